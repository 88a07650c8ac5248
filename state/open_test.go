package state

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestDefaultPath(t *testing.T) {
	tests := []struct {
		env  string
		want string
	}{
		{"", "hexcron.db"},
		{"/var/lib/hexcron", "/var/lib/hexcron/hexcron.db"},
		{"/var/lib/hexcron:/var/lib/other", "/var/lib/hexcron/hexcron.db"},
	}
	for _, tt := range tests {
		got := DefaultPath(func(k string) string {
			if k == "STATE_DIRECTORY" {
				return tt.env
			}
			return ""
		})
		if got != tt.want {
			t.Errorf("STATE_DIRECTORY=%q: DefaultPath = %q, want %q", tt.env, got, tt.want)
		}
	}
}

func TestOpenCreatesPrivateWALDatabase(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hexcron.db")
	db, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var mode string
	if err := db.sql.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	var fk, busy, sync int
	db.sql.QueryRow("PRAGMA foreign_keys").Scan(&fk)
	db.sql.QueryRow("PRAGMA busy_timeout").Scan(&busy)
	db.sql.QueryRow("PRAGMA synchronous").Scan(&sync)
	if fk != 1 || busy != 5000 || sync != 2 {
		t.Errorf("foreign_keys=%d busy_timeout=%d synchronous=%d; want 1 5000 2", fk, busy, sync)
	}
	if v, err := db.SchemaVersion(ctx); err != nil || v != latestVersion() {
		t.Errorf("schema version = %d, %v; want %d", v, err, latestVersion())
	}
	if err := db.SetHeartbeat(ctx, t0); err != nil { // a write, so -wal and -shm exist
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s: mode %o, want 600", filepath.Base(p), perm)
		}
	}
	db.Close()

	// Reopening (read-write and read-only) keeps the data.
	for _, ro := range []bool{false, true} {
		db, err := Open(ctx, path, Options{ReadOnly: ro})
		if err != nil {
			t.Fatalf("reopen ReadOnly=%v: %v", ro, err)
		}
		if hb, ok, err := db.Heartbeat(ctx); err != nil || !ok || !hb.Equal(t0) {
			t.Errorf("ReadOnly=%v: heartbeat = %v %v %v, want %v", ro, hb, ok, err, t0)
		}
		db.Close()
	}
}

func TestReadOnlyOpenNeverWrites(t *testing.T) {
	ctx := context.Background()
	db := openT(t)
	ro, err := Open(ctx, db.Path(), Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	err = ro.SetHeartbeat(ctx, t0)
	if !errors.Is(err, ErrReadOnly) {
		t.Errorf("write through a read-only handle: %v, want ErrReadOnly", err)
	}
	if err := ro.LockDaemon(); err == nil || !strings.Contains(err.Error(), "opened read-only") {
		t.Errorf("LockDaemon on a read-only handle: %v", err)
	}
}

func sum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestOpenErrors produces each refusal of Open on purpose, asserts its kind and message,
// and checks that the file is left byte-for-byte unchanged.
func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string) // makes the file at path
		opts    Options
		kind    error
		msg     string // substring of the message after the path
	}{
		{
			name: "text file",
			prepare: func(t *testing.T, path string) {
				os.WriteFile(path, []byte("schedules:\n  - name: nightly\n"), 0o600)
			},
			kind: ErrNotHexcron,
			msg:  ": not a hexcron database (not a SQLite file)",
		},
		{
			name: "another program's SQLite database",
			prepare: func(t *testing.T, path string) {
				raw := rawDB(t, path)
				mustExec(t, raw, "CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")
				mustExec(t, raw, "INSERT INTO photos (name) VALUES ('cat.jpg')")
				raw.Close()
			},
			kind: ErrNotHexcron,
			msg:  ": not a hexcron database (a SQLite database of another program: application_id 0x0, want 0x68657863)",
		},
		{
			name: "schema newer than this binary",
			prepare: func(t *testing.T, path string) {
				makeHexcron(t, path)
				raw := rawDB(t, path)
				mustExec(t, raw, "PRAGMA user_version = 99")
				raw.Close()
			},
			kind: ErrSchemaTooNew,
			msg:  fmt.Sprintf("database schema version 99 is newer than this hexcron knows (%d): upgrade hexcron", latestVersion()),
		},
		{
			name: "corrupt file",
			prepare: func(t *testing.T, path string) {
				makeHexcron(t, path)
				corruptPage(t, path, 3) // page 2 is the auto-vacuum pointer map
			},
			kind: ErrCorrupt,
			msg:  ": database is corrupt: database disk image is malformed (restore a backup, see docs/state.md)",
		},
		{
			name: "corrupt header",
			prepare: func(t *testing.T, path string) {
				makeHexcron(t, path)
				f, _ := os.OpenFile(path, os.O_WRONLY, 0)
				f.WriteAt([]byte{0xff, 0xff, 0xff, 0xff}, 16) // page size and format bytes
				f.Close()
			},
			kind: ErrCorrupt,
			msg:  ": database is corrupt: file is not a database (restore a backup, see docs/state.md)",
		},
		{
			name:    "read-only open of a missing file",
			prepare: func(t *testing.T, path string) {},
			opts:    Options{ReadOnly: true},
			kind:    ErrNoDatabase,
			msg:     ": no hexcron database (run `hexcron run` once to create it, or pass --db)",
		},
		{
			name: "read-only open of an outdated schema",
			prepare: func(t *testing.T, path string) {
				makeHexcron(t, path)
				raw := rawDB(t, path)
				mustExec(t, raw, "PRAGMA user_version = 0")
				raw.Close()
			},
			opts: Options{ReadOnly: true},
			kind: ErrSchemaOutdated,
			msg:  fmt.Sprintf("database schema is older than this hexcron (version 0, this hexcron uses %d; start `hexcron run` once to migrate it)", latestVersion()),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "hexcron.db")
			tt.prepare(t, path)
			var before [32]byte
			_, statErr := os.Stat(path)
			if statErr == nil {
				before = sum(t, path)
			}
			db, err := Open(ctx, path, tt.opts)
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			}
			t.Logf("%v", err)
			if !errors.Is(err, tt.kind) {
				t.Errorf("error %q is not %v", err, tt.kind)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("message %q\nwant the path and %q", err, tt.msg)
			}
			if statErr == nil {
				if sum(t, path) != before {
					t.Error("Open changed the file")
				}
			} else if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Error("read-only Open created the file")
			}
		})
	}
}

// makeHexcron creates a hexcron database with a few rows at path and closes it
// (checkpointing its WAL into the main file).
func makeHexcron(t *testing.T, path string) {
	t.Helper()
	ctx := context.Background()
	db, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if _, err := db.PlanSlot(ctx, Slot{Key: "nightly@" + t0.AddDate(0, 0, i).Format("2006-01-02T15:04:05Z")}, t0); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// corruptPage overwrites database page n (1-based) with garbage.
func corruptPage(t *testing.T, path string, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	junk := []byte(strings.Repeat("\xde\xad\xbe\xef", 1024))
	if _, err := f.WriteAt(junk, int64(n-1)*4096); err != nil {
		t.Fatal(err)
	}
}

// TestOpenReadOnlyLocation: a directory nobody may write to. As root (who ignores
// permission bits), the check runs in a child process dropped to uid 65534.
func TestOpenReadOnlyLocation(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, dir string) string // returns the database path
		msg     string
	}{
		{
			name: "new database in a read-only directory",
			prepare: func(t *testing.T, dir string) string {
				return filepath.Join(dir, "hexcron.db")
			},
			msg: "create state %s: database location is read-only: open %s: permission denied",
		},
		{
			name: "existing read-only database file",
			prepare: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "hexcron.db")
				makeHexcron(t, p)
				os.Chmod(p, 0o444)
				return p
			},
			msg: "open state %s: database location is read-only: open %s: permission denied",
		},
		{
			name: "writable file in a read-only directory",
			prepare: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "hexcron.db")
				makeHexcron(t, p)
				os.Chmod(p, 0o666)
				return p
			},
			msg: "open state %s: database location is read-only: permission denied (its directory is not writable; SQLite needs to create hexcron.db-wal and -shm there)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := tt.prepare(t, dir)
			var before [32]byte
			exists := false
			if _, err := os.Stat(path); err == nil {
				exists, before = true, sum(t, path)
			}
			os.Chmod(dir, 0o555)
			t.Cleanup(func() { os.Chmod(dir, 0o755) })
			got := openAsUnprivileged(t, path)
			want := strings.ReplaceAll(tt.msg, "%s", path)
			if got != want {
				t.Errorf("error\n got %q\nwant %q", got, want)
			}
			if exists && sum(t, path) != before {
				t.Error("Open changed the file")
			}
		})
	}
}

// openAsUnprivileged returns Open's error text for path, from this process when it is
// not root, else from a child running as nobody.
func openAsUnprivileged(t *testing.T, path string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		_, err := Open(context.Background(), path, Options{})
		if err != nil && !errors.Is(err, ErrReadOnly) {
			t.Errorf("%v is not ErrReadOnly", err)
		}
		return errText(err)
	}
	// The child needs to reach the test binary and the temp dir as nobody.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	binDir := t.TempDir()
	os.Chmod(binDir, 0o755)
	bin := filepath.Join(binDir, "state.test")
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	for d := filepath.Dir(path); d != "/"; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
			os.Chmod(d, fi.Mode().Perm()|0o011) // traversable, not listable
			t.Cleanup(func() { os.Chmod(d, fi.Mode().Perm()) })
		}
	}
	cmd := exec.Command(bin, "-test.run=^$", path)
	cmd.Env = append(os.Environ(), helperEnv+"=open")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("cannot run a child as nobody: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// TestOpenDiskFull provokes SQLITE_FULL with PRAGMA max_page_count: while creating the
// schema, and on a write to an open database.
func TestOpenDiskFull(t *testing.T) {
	ctx := context.Background()
	t.Run("while creating", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "hexcron.db")
		_, err := Open(ctx, path, Options{maxPageCount: 3})
		if !errors.Is(err, ErrDiskFull) {
			t.Fatalf("Open: %v, want ErrDiskFull", err)
		}
		want := "migrate state 0001_init.sql " + path + ": disk full: database or disk is full"
		if err.Error() != want {
			t.Errorf("message\n got %q\nwant %q", err, want)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("the half-created database was left behind: %v", err)
		}
	})
	t.Run("on a write", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "hexcron.db")
		makeHexcron(t, path)
		db, err := Open(ctx, path, Options{maxPageCount: 10})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var werr error
		for i := 0; i < 10000 && werr == nil; i++ {
			_, werr = db.PlanSlot(ctx, Slot{Key: "big@" + t0.Add(time.Duration(i)*time.Minute).Format("2006-01-02T15:04:05Z"),
				Matrix: map[string]string{"pad": strings.Repeat("x", 500)}}, t0)
		}
		if !errors.Is(werr, ErrDiskFull) {
			t.Fatalf("writes until full: %v, want ErrDiskFull", werr)
		}
		want := "plan slot " + path + ": disk full: database or disk is full"
		if werr.Error() != want {
			t.Errorf("message\n got %q\nwant %q", werr, want)
		}
		// The database is still usable for reads and smaller work.
		if _, err := db.History(ctx, Filter{Limit: 1}); err != nil {
			t.Errorf("read after disk full: %v", err)
		}
	})
}

// TestOpenNoSpaceOnTinyFilesystem fills a real 64 KiB tmpfs (needs CAP_SYS_ADMIN;
// skipped otherwise): ENOSPC must map to the same ErrDiskFull.
func TestOpenNoSpaceOnTinyFilesystem(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	os.WriteFile(filepath.Join(dir, "filler"), make([]byte, 40<<10), 0o600)
	path := filepath.Join(dir, "hexcron.db")
	_, err := Open(context.Background(), path, Options{})
	if !errors.Is(err, ErrDiskFull) {
		t.Fatalf("Open on a full filesystem: %v, want ErrDiskFull", err)
	}
	if !strings.Contains(err.Error(), path+": disk full") {
		t.Errorf("message %q does not say disk full for %s", err, path)
	}
}
