package state

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LockDaemon makes this handle the only daemon of the database: it takes an exclusive
// flock on the database file itself, so every path that reaches the same file (a
// symlink, a hard link, a path through "..") meets the same lock. While another process
// (or another handle) holds it, LockDaemon returns a *LockedError naming the holder's
// pid. The kernel releases the lock when the holder exits, however it exits (kill -9
// included), so a crashed daemon never blocks a restart: holding the lock proves that
// no other daemon of this file is alive. Close releases it.
//
// The lock is held on a file descriptor of its own, kept open for the life of the
// handle and closed only after SQLite's connections are closed: closing any descriptor
// of the file would drop the POSIX locks SQLite holds on it.
func (db *DB) LockDaemon() error {
	if db.readOnly {
		return fmt.Errorf("lock state %s: database opened read-only", db.path)
	}
	if db.locked {
		return nil
	}
	if db.lockFile == nil {
		f, err := os.OpenFile(db.path, os.O_RDONLY, 0)
		if err != nil {
			return classifyOS("lock state", db.path, err)
		}
		db.lockFile = f
	}
	if err := syscall.Flock(int(db.lockFile.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			real, _ := filepath.EvalSymlinks(db.path)
			return fmt.Errorf("lock state: %w", &LockedError{Path: db.path, Real: real, PID: db.lockHolder()})
		}
		return fmt.Errorf("lock state %s: %w", db.path, err)
	}
	db.locked = true
	return nil
}

// lockHolder finds the pid of the process holding the flock on the database file:
// from /proc/locks (Linux), else from the lease's owner row while it is live; 0 when
// neither tells.
func (db *DB) lockHolder() int {
	if pid := flockHolder(db.lockFile); pid != 0 {
		return pid
	}
	var pid sql.NullInt64
	err := db.sql.QueryRowContext(context.Background(), `SELECT o.pid FROM lease l JOIN owners o ON o.id = l.owner
		WHERE l.id = 1`).Scan(&pid)
	if err != nil || !pid.Valid {
		return 0
	}
	return int(pid.Int64)
}

// flockHolder reads /proc/locks for the FLOCK WRITE lock on f's inode.
func flockHolder(f *os.File) int {
	fi, err := f.Stat()
	if err != nil {
		return 0
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0
	}
	dev := uint64(st.Dev)
	major := (dev>>8)&0xfff | (dev>>32)&^uint64(0xfff)
	minor := dev&0xff | (dev>>12)&^uint64(0xff)
	want := fmt.Sprintf("%02x:%02x:%d", major, minor, st.Ino)
	ino := ":" + strconv.FormatUint(st.Ino, 10)
	locks, err := os.Open("/proc/locks")
	if err != nil {
		return 0
	}
	defer locks.Close()
	var byInode []int
	sc := bufio.NewScanner(locks)
	for sc.Scan() {
		// "1: FLOCK  ADVISORY  WRITE 4242 fe:00:9979902 0 EOF"; blocked waiters are "1: -> FLOCK ...".
		f := strings.Fields(sc.Text())
		if len(f) < 6 || f[1] != "FLOCK" || f[3] != "WRITE" {
			continue
		}
		pid, err := strconv.Atoi(f[4])
		if err != nil {
			continue
		}
		if f[5] == want {
			return pid
		}
		if strings.HasSuffix(f[5], ino) {
			byInode = append(byInode, pid)
		}
	}
	if len(byInode) == 1 { // device numbers differ on some filesystems (overlayfs)
		return byInode[0]
	}
	return 0
}
