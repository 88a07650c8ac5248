package state

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// LockDaemon makes this process the only daemon of the database: it takes an exclusive
// flock on `<path>.lock` (created 0600) and writes its pid there. While another process
// holds it, LockDaemon returns a *LockedError naming that process's pid. The kernel
// releases the lock when the holder exits, however it exits (kill -9 included), so a
// crashed daemon never blocks a restart. Close releases it.
func (db *DB) LockDaemon() error {
	if db.readOnly {
		return fmt.Errorf("lock state %s: database opened read-only", db.path)
	}
	if db.lock != nil {
		return nil
	}
	name := db.path + ".lock"
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return classifyOS("lock state", name, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("lock state: %w", &LockedError{Path: name, PID: readPID(f)})
		}
		return fmt.Errorf("lock state %s: %w", name, err)
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return classifyOS("lock state", name, err)
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		f.Close()
		return classifyOS("lock state", name, err)
	}
	db.lock = f
	return nil
}

// readPID reads the holder's pid from the lock file; 0 when it cannot (the holder may
// be between taking the lock and writing its pid).
func readPID(f *os.File) int {
	buf := make([]byte, 32)
	n, _ := f.ReadAt(buf, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	if err != nil {
		return 0
	}
	return pid
}
