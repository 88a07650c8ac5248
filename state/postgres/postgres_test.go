package postgres_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"hexcron/internal/pgtest"
	"hexcron/state"
	"hexcron/state/postgres"
	"hexcron/state/statetest"
)

// TestServerClock: on the server's clock, a caller whose clock is an hour off admits
// exactly as one whose clock is right: the attempt is stored at the server's instant,
// decide sees the window in the caller's clock, a live lease cannot be taken by a
// standby whose clock runs ahead, and a leader whose clock runs behind cannot keep
// admitting past its lease.
func TestServerClock(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewURL(t)
	db := open(t, url, postgres.Options{})
	rules := []statetest.Rule{{Limit: 2, Per: time.Hour}}
	for i, skew := range []time.Duration{time.Hour, -time.Hour} {
		now := time.Now().Add(skew)
		_, wait, err := db.Admit(ctx, state.Holder{}, now, now.Add(-2*time.Hour), "", statetest.SlidingDecide(now, rules))
		if err != nil || wait != 0 {
			t.Fatalf("admission %d (clock off by %v): wait %v, %v", i, skew, wait, err)
		}
	}
	as, err := db.Attempts(ctx, time.Now().Add(-time.Minute))
	if err != nil || len(as) != 2 {
		t.Fatalf("attempts = %+v, %v; want the two, sent now by the server's clock", as, err)
	}
	for _, a := range as {
		if d := time.Since(a.Sent); d < 0 || d > 10*time.Second {
			t.Errorf("attempt sent %v ago, want now: the caller's skewed clock was stored", d)
		}
	}
	// A third, from a clock a day ahead, meets the two in its window.
	ahead := time.Now().Add(24 * time.Hour)
	_, wait, err := db.Admit(ctx, state.Holder{}, ahead, ahead.Add(-2*time.Hour), "", statetest.SlidingDecide(ahead, rules))
	if err != nil || wait < 59*time.Minute {
		t.Errorf("third admission from a clock a day ahead: wait %v, %v; want about an hour (the window is the server's)", wait, err)
	}

	// The lease on the server's clock.
	const ttl = 5 * time.Second
	a, err := db.RegisterOwner(ctx, state.RoleDaemon, "a", 1, time.Now().Add(-time.Hour), ttl)
	if err != nil {
		t.Fatal(err)
	}
	la, err := db.AcquireLease(ctx, a.ID, time.Now().Add(-time.Hour), ttl)
	if err != nil {
		t.Fatal(err)
	}
	if d := la.Expires.Sub(time.Now().Add(-time.Hour)); d < ttl-time.Second || d > ttl+time.Second {
		t.Errorf("lease expiry %v after the caller's now, want the TTL %v in the caller's clock", d, ttl)
	}
	b, err := db.RegisterOwner(ctx, state.RoleDaemon, "b", 2, time.Now().Add(time.Hour), ttl)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.AcquireLease(ctx, b.ID, time.Now().Add(time.Hour), ttl); !errors.Is(err, state.ErrLeaseHeld) {
		t.Fatalf("a standby whose clock runs an hour ahead took a live lease: %v", err)
	}
	leader := state.Holder{Owner: a.ID, Epoch: la.Epoch}
	if _, _, err := db.Admit(ctx, leader, time.Now().Add(-time.Hour), time.Now().Add(-3*time.Hour), "", func([]state.Attempt) time.Duration { return 0 }); err != nil {
		t.Fatalf("leader admission within its lease: %v", err)
	}
	time.Sleep(ttl + 200*time.Millisecond) // the lease lapses on the server's clock (real time: the server's)
	_, _, err = db.Admit(ctx, leader, time.Now().Add(-time.Hour), time.Now().Add(-3*time.Hour), "", func([]state.Attempt) time.Duration { return 0 })
	if !errors.Is(err, state.ErrLeaseLapsed) || errors.Is(err, state.ErrFenced) {
		t.Fatalf("leader admission past its lease by the server's clock (its own says it is an hour early): %v, want ErrLeaseLapsed", err)
	}
	// Nobody took it: the leader renews and admits again.
	if _, err := db.RenewLease(ctx, a.ID, la.Epoch, time.Now().Add(-time.Hour), ttl); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.Admit(ctx, leader, time.Now().Add(-time.Hour), time.Now().Add(-3*time.Hour), "", func([]state.Attempt) time.Duration { return 0 }); err != nil {
		t.Fatalf("after renewing: %v", err)
	}
}

// TestPausesOnServerClock: a pause lives on the server's clock. Set for an hour by a
// machine whose clock runs an hour ahead, it ends an hour from now for everyone: a
// daemon whose clock runs behind sees it end an hour after its own now, and neither a
// prune nor a resume from a clock two hours ahead counts it as over.
func TestPausesOnServerClock(t *testing.T) {
	ctx := context.Background()
	db := open(t, pgtest.NewURL(t), postgres.Options{})
	near := func(got, want time.Time) bool { d := got.Sub(want); return d > -10*time.Second && d < 10*time.Second }

	ahead := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	p := state.Pause{Schedule: "alpha", Since: ahead, Until: ahead.Add(time.Hour), By: "alice", Reason: "skewed"}
	if err := db.SetPause(ctx, p); err != nil {
		t.Fatal(err)
	}
	behind := time.Now().Add(-time.Hour)
	got, err := db.Pauses(ctx, behind)
	if err != nil || len(got) != 1 {
		t.Fatalf("Pauses from a clock an hour behind = %+v, %v; want alpha's", got, err)
	}
	if !near(got[0].Since, behind) || !near(got[0].Until, behind.Add(time.Hour)) {
		t.Errorf("seen from a clock an hour behind: since %v, until %v; want about %v and %v (the server's now and an hour later, in the reader's clock)",
			got[0].Since, got[0].Until, behind, behind.Add(time.Hour))
	}
	far := time.Now().Add(2 * time.Hour)
	if n, err := db.PrunePauses(ctx, far); err != nil || n != 0 {
		t.Errorf("PrunePauses from a clock two hours ahead = %d, %v; want 0 (an hour left on the server's clock)", n, err)
	}
	if got, err := db.Pauses(ctx, far); err != nil || len(got) != 1 {
		t.Errorf("Pauses from a clock two hours ahead = %+v, %v; want alpha's still in force", got, err)
	}
	cleared, ok, err := db.ClearPause(ctx, "alpha", far)
	if err != nil || !ok || cleared.Schedule != "alpha" || !near(cleared.Until, far.Add(time.Hour)) {
		t.Errorf("ClearPause from a clock two hours ahead = %+v, %v, %v; want alpha's pause, in force, ending an hour after that clock's now", cleared, ok, err)
	}
}

// TestOpenErrors: what hexcron must not touch or cannot use gives a typed error and
// changes nothing.
func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	server := pgtest.Shared(t)

	// Another program's database: refused, its table left alone, no hexcron table made.
	name, err := server.NewDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := server.Exec(ctx, name, "CREATE TABLE orders (id int); INSERT INTO orders VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	_, err = postgres.Open(ctx, server.URL(name), postgres.Options{})
	if !errors.Is(err, state.ErrNotHexcron) || !strings.Contains(err.Error(), "not hexcron's") {
		t.Errorf("another program's schema: %v, want ErrNotHexcron", err)
	}
	if err := server.Exec(ctx, name, "SELECT 1/(count(*) = 1)::int FROM orders; SELECT 1/(count(*) = 0)::int FROM pg_tables WHERE tablename IN ('slots', 'hexcron_schema')"); err != nil {
		t.Errorf("the refused database was changed: %v", err)
	}

	// A newer hexcron's schema.
	url := pgtest.NewURL(t)
	open(t, url, postgres.Options{}).Close()
	name = url[strings.LastIndex(url, "/")+1 : strings.Index(url, "?")]
	if err := server.Exec(ctx, name, "UPDATE hexcron_schema SET version = 99"); err != nil {
		t.Fatal(err)
	}
	var tooNew *state.SchemaTooNewError
	if _, err := postgres.Open(ctx, url, postgres.Options{}); !errors.As(err, &tooNew) || tooNew.Found != 99 || !errors.Is(err, state.ErrSchemaTooNew) {
		t.Errorf("newer schema: %v", err)
	}
	// Read-only: no schema yet, and an older one.
	empty, err := server.NewDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Open(ctx, server.URL(empty), postgres.Options{ReadOnly: true}); !errors.Is(err, state.ErrNoDatabase) {
		t.Errorf("read-only open of an empty database: %v, want ErrNoDatabase", err)
	}
	// MustExist (trigger, pause): an empty database is refused and left empty.
	if _, err := postgres.Open(ctx, server.URL(empty), postgres.Options{MustExist: true}); !errors.Is(err, state.ErrNoDatabase) {
		t.Errorf("MustExist open of an empty database: %v, want ErrNoDatabase", err)
	}
	if err := server.Exec(ctx, empty, "SELECT 1/(count(*) = 0)::int FROM pg_tables WHERE tablename IN ('slots', 'hexcron_schema')"); err != nil {
		t.Errorf("a MustExist open created the schema: %v", err)
	}
	if err := server.Exec(ctx, name, "UPDATE hexcron_schema SET version = 0"); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Open(ctx, url, postgres.Options{ReadOnly: true}); !errors.Is(err, state.ErrSchemaOutdated) {
		t.Errorf("read-only open of an older schema: %v, want ErrSchemaOutdated", err)
	}

	// Nothing listening: unreachable, quickly.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "postgres://hexcron@" + ln.Addr().String() + "/x?sslmode=disable"
	ln.Close()
	began := time.Now()
	if _, err := postgres.Open(ctx, dead, postgres.Options{OpTimeout: 2 * time.Second}); !errors.Is(err, state.ErrUnreachable) || !strings.Contains(err.Error(), "nothing was changed") {
		t.Errorf("nobody listening: %v, want ErrUnreachable", err)
	}
	if d := time.Since(began); d > 10*time.Second {
		t.Errorf("unreachable open took %v", d)
	}

	// URLs refused before connecting.
	for _, tc := range []struct{ url, want string }{
		{"postgres://hexcron:hunter2-secret@127.0.0.1/x", "carries a password"},
		{"postgres://hexcron@127.0.0.1/x?password=hunter2-secret", "carries a password"},
		{"postgres://hexcron@db.example.com/x", "sslmode=verify-full"},
		{"postgres://hexcron@db.example.com/x?sslmode=prefer", "sslmode=verify-full"},
		{"/var/lib/hexcron/hexcron.db", "not a postgres:// URL"},
	} {
		_, err := postgres.Open(ctx, tc.url, postgres.Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open(%q) = %v, want an error saying %q (and never the password)", tc.url, err, tc.want)
		}
	}
	if err := postgres.CheckURL("postgres://hexcron@db.example.com/x?sslmode=verify-full"); err != nil {
		t.Errorf("a TLS URL: %v", err)
	}
}

// TestPasswordSources: the password comes from $CREDENTIALS_DIRECTORY/db-password, else
// $PGPASSWORD, else $PGPASSFILE; a wrong one is refused with a message naming where it
// comes from, without the password; Secret gives it for redaction.
func TestPasswordSources(t *testing.T) {
	ctx := context.Background()
	server := pgtest.Shared(t)
	name, err := server.NewDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	url := server.PasswordURL(name)
	creds := t.TempDir()
	if err := os.WriteFile(filepath.Join(creds, postgres.CredentialName), []byte(pgtest.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	getenv := func(k string) string {
		if k == "CREDENTIALS_DIRECTORY" {
			return creds
		}
		return ""
	}
	t.Setenv("PGPASSWORD", "")
	t.Setenv("PGPASSFILE", filepath.Join(t.TempDir(), "none"))
	db, err := postgres.Open(ctx, url, postgres.Options{Getenv: getenv})
	if err != nil {
		t.Fatalf("with the credential: %v", err)
	}
	if db.Secret() != pgtest.Password {
		t.Errorf("Secret() = %q", db.Secret())
	}
	db.Close()

	noCreds := func(string) string { return "" }
	t.Setenv("PGPASSWORD", pgtest.Password)
	if db, err := postgres.Open(ctx, url, postgres.Options{Getenv: noCreds}); err != nil {
		t.Errorf("with PGPASSWORD: %v", err)
	} else {
		db.Close()
	}
	t.Setenv("PGPASSWORD", "")
	passfile := filepath.Join(t.TempDir(), "pgpass")
	if err := os.WriteFile(passfile, []byte("127.0.0.1:*:*:"+pgtest.PasswordUser+":"+pgtest.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGPASSFILE", passfile)
	if db, err := postgres.Open(ctx, url, postgres.Options{Getenv: noCreds}); err != nil {
		t.Errorf("with PGPASSFILE: %v", err)
	} else {
		db.Close()
	}
	t.Setenv("PGPASSFILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("PGPASSWORD", "wrong-password-xyz")
	_, err = postgres.Open(ctx, url, postgres.Options{Getenv: noCreds})
	if err == nil || !strings.Contains(err.Error(), "refused the login") || strings.Contains(err.Error(), "wrong-password-xyz") {
		t.Errorf("wrong password: %v", err)
	}
}

// TestConcurrentMigrations: processes starting at once on a fresh database migrate it
// once, under the advisory lock: every open succeeds.
func TestConcurrentMigrations(t *testing.T) {
	url := pgtest.NewURL(t)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Go(func() {
			db, err := postgres.Open(context.Background(), url, postgres.Options{})
			if err == nil {
				db.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	db := open(t, url, postgres.Options{ReadOnly: true})
	if v, err := db.SchemaVersion(context.Background()); err != nil || v != postgres.LatestVersion() {
		t.Errorf("schema version %d, %v; want %d", v, err, postgres.LatestVersion())
	}
}

// TestRestartIsUnreachableThenBack: while the server restarts, operations fail with
// ErrUnreachable (nothing half-written), and the same handle works again after.
func TestRestartIsUnreachableThenBack(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a PostgreSQL server")
	}
	ctx := context.Background()
	pgtest.Shared(t)                 // skips without PostgreSQL (fails under CI=true)
	server, err := pgtest.Start(ctx) // a server of its own: this test kills it
	if err != nil {
		t.Fatal(err)
	}
	defer server.Stop()
	name, err := server.NewDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	db := open(t, server.URL(name), postgres.Options{OpTimeout: 2 * time.Second})
	if err := db.SetHeartbeat(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	server.Kill()
	if _, _, err := db.Admit(ctx, state.Holder{}, time.Now(), time.Now().Add(-time.Hour), "x@2026-01-01T00:00:00Z", func([]state.Attempt) time.Duration { return 0 }); !errors.Is(err, state.ErrUnreachable) {
		t.Errorf("admission while the server is down: %v, want ErrUnreachable", err)
	}
	if err := server.StartAgain(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.Admit(ctx, state.Holder{}, time.Now(), time.Now().Add(-time.Hour), "x@2026-01-01T00:00:00Z", func([]state.Attempt) time.Duration { return 0 }); err != nil {
		t.Errorf("admission after the restart: %v", err)
	}
	as, err := db.Attempts(ctx, time.Time{})
	if err != nil || len(as) != 1 {
		t.Errorf("attempts after the restart: %d, %v; want 1 (the failed admission wrote nothing)", len(as), err)
	}
}
