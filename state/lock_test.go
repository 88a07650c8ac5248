package state

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
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
	want := fmt.Sprintf("lock state: database is in use by another hexcron daemon (pid %d holds %s.lock)", os.Getpid(), a.Path())
	if err.Error() != want {
		t.Errorf("message\n got %q\nwant %q", err, want)
	}
	fi, err := os.Stat(a.Path() + ".lock")
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("lock file: %v %v, want mode 600", fi.Mode(), err)
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
	want := fmt.Sprintf("lock state: database is in use by another hexcron daemon (pid %d holds %s.lock)", cmd.Process.Pid, path)
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
	b, _ := os.ReadFile(path + ".lock")
	if got := strings.TrimSpace(string(b)); got != fmt.Sprint(os.Getpid()) {
		t.Errorf("lock file holds %q, want our pid %d", got, os.Getpid())
	}
	if hb, ok, err := db.Heartbeat(ctx); err != nil || !ok || !hb.Equal(t0) {
		t.Errorf("heartbeat written before kill -9: %v %v %v", hb, ok, err)
	}
}
