package state

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mattn/go-sqlite3"
)

// applicationID is "hexc" in ASCII. It is written into the SQLite header (PRAGMA
// application_id) so that another program's SQLite file is recognised and left alone.
const applicationID = 0x68657863

// sqliteMagic starts every SQLite 3 database file.
const sqliteMagic = "SQLite format 3\x00"

// Options tunes Open.
type Options struct {
	// ReadOnly opens for status and history: never creates, migrates or writes the file.
	ReadOnly bool
	// BusyTimeout is how long a connection waits for another process's write lock
	// before giving up with SQLITE_BUSY. Zero means 5s.
	BusyTimeout time.Duration

	// maxPageCount, when > 0, is set with PRAGMA max_page_count on every connection
	// (tests use it to provoke SQLITE_FULL).
	maxPageCount int
}

// DB is an open hexcron database. It is safe for concurrent use.
type DB struct {
	path     string
	sql      *sql.DB
	readOnly bool
	lockFile *os.File // the database file opened by LockDaemon for its flock; nil before
	locked   bool     // LockDaemon holds the flock
}

// DefaultPath is where the database lives when --db is not given:
// $STATE_DIRECTORY/hexcron.db when systemd sets STATE_DIRECTORY (the first entry when it
// lists several, colon-separated), else ./hexcron.db.
func DefaultPath(getenv func(string) string) string {
	dirs := getenv("STATE_DIRECTORY")
	if first, _, _ := strings.Cut(dirs, ":"); first != "" {
		return filepath.Join(first, "hexcron.db")
	}
	return "hexcron.db"
}

// Open opens the hexcron database at path, creating it (mode 0600) and migrating its
// schema unless opts.ReadOnly. A file that is not a hexcron database, a corrupt file, a
// schema newer than this binary, a read-only location or a full disk each give a
// distinct error (ErrNotHexcron, ErrCorrupt, ErrSchemaTooNew, ErrReadOnly, ErrDiskFull)
// and leave an existing file unchanged.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	if path == "" {
		return nil, errors.New("open state: empty database path")
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 5 * time.Second
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	created, err := prepareFile(abs, opts.ReadOnly)
	if err != nil {
		return nil, err
	}
	db, err := open(ctx, abs, opts, created)
	if err != nil && created {
		// Leave nothing behind for a database we created and could not set up.
		for _, p := range []string{abs, abs + "-wal", abs + "-shm"} {
			_ = os.Remove(p)
		}
	}
	return db, err
}

// prepareFile makes sure the file exists and is writable (unless readOnly), creating it
// with mode 0600, and rejects files that are not SQLite files at all.
func prepareFile(path string, readOnly bool) (created bool, err error) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if readOnly {
			return false, &pathError{op: "open state", path: path, kind: ErrNoDatabase,
				msg: "run `hexcron run` once to create it, or pass --db"}
		}
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			return prepareFile(path, readOnly) // another process created it just now
		}
		if err != nil {
			return false, classifyOS("create state", path, err)
		}
		if err := f.Close(); err != nil {
			return true, classifyOS("create state", path, err)
		}
		return true, checkDirWritable(path)
	case err != nil:
		return false, fmt.Errorf("open state %s: %w", path, err)
	case fi.IsDir():
		return false, fmt.Errorf("open state %s: is a directory", path)
	}
	flag := os.O_RDWR
	if readOnly {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return false, classifyOS("open state", path, err)
	}
	defer f.Close()
	head := make([]byte, len(sqliteMagic))
	n, err := io.ReadFull(f, head)
	switch {
	case n == 0 && (err == io.EOF) && !readOnly:
		// An empty file: a new database, private like one hexcron creates (SQLite
		// gives -wal and -shm the database file's mode).
		if fi.Mode().Perm() != 0o600 {
			if err := f.Chmod(0o600); err != nil {
				return false, &pathError{op: "open state", path: path, kind: ErrReadOnly,
					msg: fmt.Sprintf("an empty file with mode %#o that hexcron cannot make private (0600): remove it, hexcron creates its database itself", fi.Mode().Perm()),
					err: err}
			}
		}
	case n == 0 && (err == io.EOF):
		// An empty file: a new database (a read-only open reports it below).
	case err != nil && !errors.Is(err, io.ErrUnexpectedEOF):
		return false, fmt.Errorf("open state %s: %w", path, err)
	case !bytes.Equal(head[:n], []byte(sqliteMagic)):
		return false, &pathError{op: "open state", path: path, kind: ErrNotHexcron, msg: "not a SQLite file"}
	}
	if readOnly {
		return false, nil
	}
	return false, checkDirWritable(path)
}

// checkDirWritable reports ErrReadOnly when SQLite could not create the -wal and -shm
// files next to the database.
func checkDirWritable(path string) error {
	if err := syscall.Access(filepath.Dir(path), 2 /* W_OK */); err != nil {
		return &pathError{op: "open state", path: path, kind: ErrReadOnly,
			msg: "its directory is not writable; SQLite needs to create " + filepath.Base(path) + "-wal and -shm there",
			err: err}
	}
	return nil
}

func open(ctx context.Context, path string, opts Options, created bool) (*DB, error) {
	if !created {
		if err := inspect(ctx, path, opts); err != nil {
			return nil, err
		}
	}
	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(opts.BusyTimeout.Milliseconds()))
	q.Set("_fk", "1")
	q.Set("_txlock", "immediate")
	if opts.ReadOnly {
		q.Set("mode", "ro")
	} else {
		// Incremental auto-vacuum: set before the first table of a new file, so that
		// Compact can return the pages pruning frees; a file created before schema 7
		// gets it at its first Compact (one VACUUM).
		q.Set("_auto_vacuum", "incremental")
		q.Set("_journal_mode", "WAL")
		q.Set("_sync", "FULL")
	}
	sdb := sql.OpenDB(&connector{dsn: dsn(path, q), maxPageCount: opts.maxPageCount})
	db := &DB{path: path, sql: sdb, readOnly: opts.ReadOnly}
	if !opts.ReadOnly {
		if err := db.migrate(ctx); err != nil {
			sdb.Close()
			return nil, err
		}
	}
	if err := sdb.PingContext(ctx); err != nil {
		sdb.Close()
		return nil, classify("open state", path, err)
	}
	return db, nil
}

// inspect reads an existing file through a read-only connection and refuses, without
// writing anything, a file that is not ours, is corrupt, or has a schema we cannot use.
func inspect(ctx context.Context, path string, opts Options) error {
	q := url.Values{}
	q.Set("mode", "ro")
	q.Set("_busy_timeout", fmt.Sprint(opts.BusyTimeout.Milliseconds()))
	sdb := sql.OpenDB(&connector{dsn: dsn(path, q)})
	defer sdb.Close()
	conn, err := sdb.Conn(ctx)
	if err != nil {
		return classify("open state", path, err)
	}
	defer conn.Close()
	var appID, version, objects int
	if err := conn.QueryRowContext(ctx, "PRAGMA application_id").Scan(&appID); err != nil {
		return classify("open state", path, err)
	}
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return classify("open state", path, err)
	}
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&objects); err != nil {
		return classify("open state", path, err)
	}
	fresh := appID == 0 && version == 0 && objects == 0
	known := latestVersion()
	switch {
	case fresh && opts.ReadOnly:
		return &pathError{op: "open state", path: path, kind: ErrNoDatabase,
			msg: "the file is an empty database; run `hexcron run` once to create it"}
	case fresh:
		return nil
	case appID != applicationID:
		return &pathError{op: "open state", path: path, kind: ErrNotHexcron,
			msg: fmt.Sprintf("a SQLite database of another program: application_id %#x, want %#x", appID, applicationID)}
	case version > known:
		return fmt.Errorf("open state %s: %w", path, &SchemaTooNewError{Path: path, Found: version, Known: known})
	case version < known && opts.ReadOnly:
		return &pathError{op: "open state", path: path, kind: ErrSchemaOutdated,
			msg: fmt.Sprintf("version %d, this hexcron uses %d; start `hexcron run` once to migrate it", version, known)}
	}
	rows, err := conn.QueryContext(ctx, "PRAGMA quick_check")
	if err != nil {
		return classify("open state", path, err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return classify("open state", path, err)
		}
		if s != "ok" {
			problems = append(problems, s)
		}
	}
	if err := rows.Err(); err != nil {
		return classify("open state", path, err)
	}
	if len(problems) > 0 {
		msg := problems[0]
		if len(problems) > 1 {
			msg += fmt.Sprintf(" (and %d more problems)", len(problems)-1)
		}
		return &pathError{op: "open state", path: path, kind: ErrCorrupt,
			msg: "PRAGMA quick_check: " + msg + "; restore a backup, see docs/state.md"}
	}
	return nil
}

// dsn builds a SQLite URI for an absolute path, escaping it so that '?', '#' and '%' in
// a directory name cannot be read as URI syntax.
func dsn(path string, q url.Values) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: q.Encode()}
	return u.String()
}

// connector opens go-sqlite3 connections without registering a global driver name.
type connector struct {
	dsn          string
	maxPageCount int
}

func (c *connector) Connect(context.Context) (driver.Conn, error) {
	d := &sqlite3.SQLiteDriver{}
	if c.maxPageCount > 0 {
		d.ConnectHook = func(conn *sqlite3.SQLiteConn) error {
			_, err := conn.Exec(fmt.Sprintf("PRAGMA max_page_count = %d", c.maxPageCount), nil)
			return err
		}
	}
	return d.Open(c.dsn)
}

func (c *connector) Driver() driver.Driver { return &sqlite3.SQLiteDriver{} }

// Path returns the absolute path of the database file.
func (db *DB) Path() string { return db.path }

// Close closes the database and then releases the daemon lock (if held): the lock's
// descriptor is closed only after SQLite's connections (see LockDaemon).
func (db *DB) Close() error {
	err := db.sql.Close()
	if db.lockFile != nil {
		if cerr := db.lockFile.Close(); err == nil {
			err = cerr
		}
		db.lockFile, db.locked = nil, false
	}
	if err != nil {
		return fmt.Errorf("close state %s: %w", db.path, err)
	}
	return nil
}

// classify turns SQLite and OS errors into the package's typed errors, wrapped with
// the operation name and the path.
func classify(op, path string, err error) error {
	if err == nil {
		return nil
	}
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code {
		case sqlite3.ErrFull:
			return &pathError{op: op, path: path, kind: ErrDiskFull, err: err}
		case sqlite3.ErrReadonly:
			return &pathError{op: op, path: path, kind: ErrReadOnly, err: err}
		case sqlite3.ErrCorrupt, sqlite3.ErrNotADB:
			return &pathError{op: op, path: path, kind: ErrCorrupt,
				msg: "restore a backup, see docs/state.md", err: err}
		}
		if k := osKind(se.SystemErrno); k != nil { // e.g. SQLITE_IOERR_WRITE with ENOSPC
			return &pathError{op: op, path: path, kind: k, err: err}
		}
	}
	if k := osKind(err); k != nil {
		return &pathError{op: op, path: path, kind: k, err: err}
	}
	return fmt.Errorf("%s %s: %w", op, path, err)
}

func classifyOS(op, path string, err error) error {
	if k := osKind(err); k != nil {
		return &pathError{op: op, path: path, kind: k, err: err}
	}
	return fmt.Errorf("%s %s: %w", op, path, err)
}

func osKind(err error) error {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return nil
	}
	switch errno {
	case syscall.EACCES, syscall.EPERM, syscall.EROFS:
		return ErrReadOnly
	case syscall.ENOSPC, syscall.EDQUOT:
		return ErrDiskFull
	}
	return nil
}
