package state

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestLockDaemonInProcess(t *testing.T) {
	ctx := context.Background()
	a := openT(t)
	if err := a.LockDaemon(); err != nil {
		t.Fatal(err)
	}
	if err := a.LockDaemon(); err != nil {
		t.Errorf("second LockDaemon on the same handle: %v, want nil", err)
	}
	b, err := Open(ctx, a.Path(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	err = b.LockDaemon()
	var le *LockedError
	if !errors.As(err, &le) || !errors.Is(err, ErrLocked) {
		t.Fatalf("LockDaemon while held: %v, want *LockedError", err)
	}
	want := fmt.Sprintf("lock state: database is in use by another hexcron daemon (pid %d holds the lock on %s)", os.Getpid(), a.Path())
	if err.Error() != want {
		t.Errorf("message\n got %q\nwant %q", err, want)
	}
	if _, err := os.Stat(a.Path() + ".lock"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a lock file beside the database: %v; the lock is on the database file itself", err)
	}
	a.Close()
	if err := b.LockDaemon(); err != nil {
		t.Errorf("LockDaemon after the holder closed: %v", err)
	}
}

// TestLockDaemonSurvivesKill: a second daemon is refused with the holder's pid; once the
// holder is killed with SIGKILL, a restart locks and finds the holder's committed writes.
func TestLockDaemonSurvivesKill(t *testing.T) {
	ctx := context.Background()
	path := t.TempDir() + "/hexcron.db"
	cmd := helperCmd(t, "lock", path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "locked" {
		cmd.Process.Kill()
		t.Fatalf("helper: %q %v", line, err)
	}

	second, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = second.LockDaemon()
	second.Close()
	want := fmt.Sprintf("lock state: database is in use by another hexcron daemon (pid %d holds the lock on %s)", cmd.Process.Pid, path)
	if err == nil || err.Error() != want {
		t.Errorf("LockDaemon while the child holds it:\n got %v\nwant %s", err, want)
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	// A fresh open after the crash (WAL recovery from the -wal and -shm it left).
	db, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.LockDaemon(); err != nil {
		t.Fatalf("LockDaemon after the holder was killed: %v", err)
	}
	if hb, ok, err := db.Heartbeat(ctx); err != nil || !ok || !hb.Equal(t0) {
		t.Errorf("heartbeat written before kill -9: %v %v %v", hb, ok, err)
	}
}

// startLockHolder runs a helper process that opens path, takes the daemon lock and
// holds it until the test ends.
func startLockHolder(t *testing.T, path string) *exec.Cmd {
	t.Helper()
	cmd := helperCmd(t, "lock", path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "locked" {
		t.Fatalf("helper: %q %v", line, err)
	}
	return cmd
}

// TestLockDaemonAnyPath: a daemon holds real.db; a second daemon reaching the same file
// through a symlink, a hard link or a path through ".." is refused with the holder's
// pid, and so is a second handle in the holder's own process.
func TestLockDaemonAnyPath(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	real := filepath.Join(dir, "real.db")
	holder := startLockHolder(t, real)
	if err := os.Symlink(real, filepath.Join(dir, "link.db")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(real, filepath.Join(dir, "hard.db")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{
		filepath.Join(dir, "link.db"),
		filepath.Join(dir, "hard.db"),
		dir + "/sub/../real.db",
		real,
	} {
		db, err := Open(ctx, p, Options{})
		if err != nil {
			t.Fatalf("open %s: %v", p, err)
		}
		err = db.LockDaemon()
		db.Close()
		var le *LockedError
		if !errors.As(err, &le) {
			t.Errorf("LockDaemon through %s: %v, want *LockedError", p, err)
			continue
		}
		if le.PID != holder.Process.Pid {
			t.Errorf("through %s: pid %d, want the holder's %d", p, le.PID, holder.Process.Pid)
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("pid %d holds the lock", holder.Process.Pid)) {
			t.Errorf("through %s: message %q does not name the holder's pid", p, err)
		}
	}
	// Through the symlink, the message names the real file too.
	db, err := Open(ctx, filepath.Join(dir, "link.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.LockDaemon(); err == nil || !strings.Contains(err.Error(), real+" (reached through "+filepath.Join(dir, "link.db")+")") {
		t.Errorf("message through the symlink: %v", err)
	}
}

// TestLockDaemonKeepsSQLiteLocks: closing the handle of a refused second daemon in the
// same process must not drop the holder's locks; the holder keeps writing.
func TestLockDaemonKeepsSQLiteLocks(t *testing.T) {
	ctx := context.Background()
	a := openT(t)
	if err := a.LockDaemon(); err != nil {
		t.Fatal(err)
	}
	b, err := Open(ctx, a.Path(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.LockDaemon(); !errors.Is(err, ErrLocked) {
		t.Fatalf("second handle: %v", err)
	}
	b.Close()
	if err := a.SetHeartbeat(ctx, t0); err != nil {
		t.Fatal(err)
	}
	c, err := Open(ctx, a.Path(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.LockDaemon(); !errors.Is(err, ErrLocked) {
		t.Errorf("after the refused handle closed, the holder's lock is gone: %v", err)
	}
}
