package state

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
)

// simulationMark is the meta row `hexcron run --simulate` writes into the database it
// creates, so that it only ever replaces a database it made itself.
const simulationMark = "simulation"

// MarkSimulation records that `hexcron run --simulate` created this database.
func (db *DB) MarkSimulation(ctx context.Context) error {
	_, err := db.exec(ctx, `INSERT INTO meta (name, value) VALUES (?, '1')
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, simulationMark)
	return classify("mark simulation", db.path, err)
}

// IsSimulation reports whether the file at path is a database `hexcron run --simulate`
// made: a regular file (not a symlink) carrying hexcron's application id and the
// simulation mark. It never writes the file; a missing file is not one.
func IsSimulation(ctx context.Context, path string) (bool, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("inspect %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return false, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("inspect %s: %w", path, err)
	}
	head := make([]byte, len(sqliteMagic))
	_, err = io.ReadFull(f, head)
	f.Close()
	if err != nil || !bytes.Equal(head, []byte(sqliteMagic)) {
		return false, nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return false, fmt.Errorf("inspect %s: %w", path, err)
	}
	q := url.Values{}
	q.Set("mode", "ro")
	sdb := sql.OpenDB(&connector{dsn: dsn(abs, q)})
	defer sdb.Close()
	var appID int
	if err := sdb.QueryRowContext(ctx, "PRAGMA application_id").Scan(&appID); err != nil || appID != applicationID {
		return false, nil
	}
	var v string
	err = sdb.QueryRowContext(ctx, "SELECT value FROM meta WHERE name = ?", simulationMark).Scan(&v)
	return err == nil && v == "1", nil
}
