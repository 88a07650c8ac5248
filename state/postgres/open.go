package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"hexcron/state"
)

// CredentialName is the systemd credential (LoadCredential=db-password:FILE) read for
// the database password: $CREDENTIALS_DIRECTORY/db-password. Without it, the password
// comes from $PGPASSWORD, then from $PGPASSFILE (default ~/.pgpass), as libpq does.
const CredentialName = "db-password"

// Defaults of Options.
const (
	// DefaultOpTimeout bounds every operation (one statement or one transaction): a
	// server that does not answer within it is unreachable.
	DefaultOpTimeout = 5 * time.Second
	// DefaultMaxConns is the pool size of one process.
	DefaultMaxConns = 4
	// idleInTxTimeout makes the server end the session of a client paused (SIGSTOP) or
	// cut off inside a transaction, so that the advisory lock it holds is released.
	idleInTxTimeout = 5 * time.Second
)

// Options tunes Open.
type Options struct {
	// ReadOnly opens for status and history: never creates or migrates the schema, and
	// every transaction is read-only.
	ReadOnly bool
	// MustExist refuses a database without a hexcron schema (ErrNoDatabase) instead of
	// creating one; an older hexcron schema is still migrated. For the commands that
	// write but must not create the schema (trigger, check, pause, resume): the daemon
	// creates it.
	MustExist bool
	// Getenv reads $CREDENTIALS_DIRECTORY (default os.Getenv). pgx reads the PG*
	// variables itself.
	Getenv func(string) string
	// OpTimeout bounds each operation (default DefaultOpTimeout).
	OpTimeout time.Duration
	// MaxConns is the size of the connection pool (default DefaultMaxConns).
	MaxConns int32
	// ClientClock takes every instant from the caller instead of the server's clock.
	// For tests that drive time themselves (the contract tests); never in production,
	// where clock skew between machines would then enter the budget and the lease.
	ClientClock bool
	// Now is this process's clock, used to translate the server's instants for reads
	// that take no instant (Attempts, Owners, CurrentLease); default time.Now.
	Now func() time.Time
}

// DB is an open hexcron database on a PostgreSQL server. It is safe for concurrent use.
type DB struct {
	pool     *pgxpool.Pool
	where    string // the URL without its password, for messages
	secret   string // the password it connects with ("" when none)
	readOnly bool
	opts     Options

	schema     string // the schema hexcron's tables are in (current_schema())
	budgetKey  int64  // advisory lock serialising admissions and lease takeovers
	migrateKey int64  // advisory lock serialising migrations
}

// IsURL reports whether target names a PostgreSQL database rather than a SQLite file:
// it starts with postgres:// or postgresql://.
func IsURL(target string) bool {
	t := strings.ToLower(target)
	return strings.HasPrefix(t, "postgres://") || strings.HasPrefix(t, "postgresql://")
}

// CheckURL refuses a URL hexcron will not use: not a postgres:// URL, one carrying a
// password (it would show in ps, the unit file or the YAML: put it in the credential,
// PGPASSWORD or PGPASSFILE), or one that would talk to a server on another machine
// without TLS (sslmode disable, allow or prefer).
func CheckURL(target string) error {
	if !IsURL(target) {
		return fmt.Errorf("%q is not a postgres:// URL", target)
	}
	u, err := url.Parse(target)
	if err != nil {
		return errors.New("not a valid postgres:// URL (the text is not repeated here in case it holds a password)")
	}
	if _, has := u.User.Password(); has || u.Query().Has("password") {
		return fmt.Errorf("the database URL carries a password: remove it and put it in $CREDENTIALS_DIRECTORY/%s (systemd LoadCredential=), $PGPASSWORD or $PGPASSFILE", CredentialName)
	}
	cfg, err := pgconn.ParseConfig(target)
	if err != nil {
		return fmt.Errorf("database URL %s: %w", redactURL(target), err)
	}
	for _, fb := range append([]*pgconn.FallbackConfig{{Host: cfg.Host, TLSConfig: cfg.TLSConfig}}, cfg.Fallbacks...) {
		if fb.TLSConfig == nil && !loopback(fb.Host) {
			return fmt.Errorf("database URL %s: host %s is not on this machine and the connection may go without TLS: "+
				"add sslmode=verify-full (or sslmode=require) to the URL", redactURL(target), fb.Host)
		}
	}
	return nil
}

// loopback reports whether host is this machine: a unix socket directory, localhost or
// a loopback address.
func loopback(host string) bool {
	if strings.HasPrefix(host, "/") || host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// redactURL is target without a password (should one be there) and without its query.
func redactURL(target string) string {
	u, err := url.Parse(target)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	u.RawQuery = ""
	return u.String()
}

// Open connects to the hexcron database at the postgres:// URL target and, unless
// opts.ReadOnly, creates or migrates its schema (under an advisory lock, in one
// transaction). A schema holding tables that are not hexcron's (ErrNotHexcron), a
// hexcron schema newer than this binary (ErrSchemaTooNew), an older one on a
// read-only open (ErrSchemaOutdated), none at all on a read-only open (ErrNoDatabase)
// and a server that cannot be reached (ErrUnreachable) each give their typed error,
// and nothing is changed.
func Open(ctx context.Context, target string, opts Options) (*DB, error) {
	if err := CheckURL(target); err != nil {
		return nil, fmt.Errorf("open state: %w", err)
	}
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.OpTimeout <= 0 {
		opts.OpTimeout = DefaultOpTimeout
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = DefaultMaxConns
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	where := redactURL(target)
	cfg, err := pgxpool.ParseConfig(target)
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", where, err)
	}
	if dir := opts.Getenv("CREDENTIALS_DIRECTORY"); dir != "" {
		b, err := os.ReadFile(filepath.Join(filepath.SplitList(dir)[0], CredentialName))
		switch {
		case err == nil:
			cfg.ConnConfig.Password = strings.TrimRight(string(b), "\r\n")
		case !errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("open state %s: read the password credential: %w", where, err)
		}
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = opts.OpTimeout
	}
	rp := cfg.ConnConfig.RuntimeParams
	if rp["application_name"] == "" {
		rp["application_name"] = "hexcron"
	}
	rp["idle_in_transaction_session_timeout"] = fmt.Sprint(idleInTxTimeout.Milliseconds())
	if opts.ReadOnly {
		rp["default_transaction_read_only"] = "on"
	}
	cfg.MaxConns = opts.MaxConns
	cfg.MinConns = 0
	cfg.HealthCheckPeriod = 10 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", where, err)
	}
	db := &DB{pool: pool, where: where, secret: cfg.ConnConfig.Password, readOnly: opts.ReadOnly, opts: opts}
	if err := db.setUp(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

// setUp names the advisory locks after the schema and checks (read-only) or migrates
// the schema.
func (db *DB) setUp(ctx context.Context) error {
	octx, cancel := context.WithTimeout(ctx, 2*db.opts.OpTimeout)
	defer cancel()
	var schema *string
	if err := db.pool.QueryRow(octx, "SELECT current_schema()").Scan(&schema); err != nil {
		return db.classify(ctx, "open state", err)
	}
	if schema == nil {
		return fmt.Errorf("open state %s: no schema to use: the search_path names no schema that exists (create one, or set search_path in the URL's options)", db.where)
	}
	db.schema = *schema
	db.budgetKey = lockKey("hexcron ledger " + *schema)
	db.migrateKey = lockKey("hexcron migrate " + *schema)
	if db.readOnly {
		return db.inspectOnly(ctx)
	}
	return db.migrate(ctx)
}

// lockKey is a stable advisory lock key for name.
func lockKey(name string) int64 {
	h := fnv.New64a()
	io.WriteString(h, name)
	return int64(h.Sum64())
}

// Where is the database's URL without password or query, as messages show it.
func (db *DB) Where() string { return db.where }

// Secret is the password this handle connects with ("" when none): for redaction only
// (the Hex client removes it from anything Hex echoes).
func (db *DB) Secret() string { return db.secret }

// Close closes every connection.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// op bounds one operation by the operation timeout.
func (db *DB) op(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, db.opts.OpTimeout)
}

// querier is what a pool and a transaction both offer.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// errRetry asks tx to run its function again (a race on a unique key lost to another
// transaction that has committed since).
var errRetry = errors.New("retry the transaction")

// tx runs fn in one transaction within the operation timeout, committing when fn
// returns nil. A serialisation failure, a deadlock the server broke, or errRetry runs
// it again (a few times); errors fn returns are returned as they are, the driver's
// are classified.
func (db *DB) tx(ctx context.Context, op string, fn func(ctx context.Context, tx pgx.Tx) error) error {
	var last error
	for range 8 {
		err := db.tx1(ctx, fn)
		if err == nil {
			return nil
		}
		if !retryable(err) {
			var dbErr *driverError
			if errors.As(err, &dbErr) {
				return db.classify(ctx, op, dbErr.err)
			}
			return err
		}
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	var dbErr *driverError
	if errors.As(last, &dbErr) {
		return db.classify(ctx, op, dbErr.err)
	}
	return fmt.Errorf("%s %s: %w", op, db.where, last)
}

// driverError marks an error that came from pgx (to classify), as opposed to one fn
// made (a typed state error, returned as it is).
type driverError struct{ err error }

func (e *driverError) Error() string { return e.err.Error() }
func (e *driverError) Unwrap() error { return e.err }

// d marks err as the driver's (nil stays nil).
func d(err error) error {
	if err == nil {
		return nil
	}
	return &driverError{err}
}

func (db *DB) tx1(ctx context.Context, fn func(ctx context.Context, tx pgx.Tx) error) error {
	octx, cancel := db.op(ctx)
	defer cancel()
	tx, err := db.pool.Begin(octx)
	if err != nil {
		return d(err)
	}
	defer tx.Rollback(context.WithoutCancel(octx)) //nolint:errcheck // after Commit a no-op
	if err := fn(octx, tx); err != nil {
		return err
	}
	return d(tx.Commit(octx))
}

func retryable(err error) bool {
	if errors.Is(err, errRetry) {
		return true
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// Unreachable reports whether err means the server could not be reached or the
// connection was lost (as opposed to the server refusing the statement).
func Unreachable(err error) bool {
	if err == nil {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"): // connection exception
			return true
		case pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03": // admin or crash shutdown, starting up
			return true
		case pe.Code == "53300": // too many connections
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	var errno syscall.Errno
	return errors.As(err, &ce) || pgconn.Timeout(err) || errors.As(err, &ne) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &errno) && (errno == syscall.ECONNRESET || errno == syscall.ECONNREFUSED || errno == syscall.EPIPE))
}

// classify turns a driver error into the state package's typed errors, wrapped with the
// operation and the database's URL, with the password removed from its text. A caller
// whose own ctx ended gets its context error.
func (db *DB) classify(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%s %s: %w", op, db.where, cerr)
	}
	err = db.scrub(err)
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "28P01" || pe.Code == "28000":
			return fmt.Errorf("%s %s: the server refused the login (check the password in $CREDENTIALS_DIRECTORY/%s, $PGPASSWORD or $PGPASSFILE, and pg_hba.conf): %w",
				op, db.where, CredentialName, err)
		case pe.Code == "3D000":
			return fmt.Errorf("%s %s: the database does not exist (create it: createdb -O USER NAME): %w", op, db.where, err)
		case pe.Code == "53100":
			return state.Error(op, db.where, state.ErrDiskFull, "", err)
		case pe.Code == "25006":
			return state.Error(op, db.where, state.ErrReadOnly, "", err)
		case pe.Code == "42501":
			return state.Error(op, db.where, state.ErrReadOnly, "the database user lacks a privilege hexcron needs (it owns its schema: GRANT CREATE, or make it the owner)", err)
		}
	}
	if Unreachable(err) {
		return state.Error(op, db.where, state.ErrUnreachable, "nothing was changed", err)
	}
	return fmt.Errorf("%s %s: %w", op, db.where, err)
}

// scrub removes the password from err's text (the driver should never print it; this
// makes sure).
func (db *DB) scrub(err error) error {
	if db.secret == "" || !strings.Contains(err.Error(), db.secret) {
		return err
	}
	return &scrubbed{msg: strings.ReplaceAll(err.Error(), db.secret, "[redacted]"), err: err}
}

type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }
