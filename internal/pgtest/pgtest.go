// Package pgtest starts throwaway PostgreSQL servers for tests: a cluster made with
// initdb in a temporary directory, listening on a free loopback port, run as an
// unprivileged user when the tests run as root (PostgreSQL refuses root), and removed
// when stopped. The binaries are Debian's (/usr/lib/postgresql/NN/bin, PostgreSQL 15
// preferred) or those named by $HEXCRON_PG_BIN. When they are missing, tests skip with
// a message saying how to install them, except under CI=true: there Shared installs
// them with apt-get (as .ci/run does) and fails the test if it cannot.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Superuser is the role the cluster trusts on loopback (no password).
const Superuser = "hexcron"

// PasswordUser is a role that must log in with Password (scram-sha-256 on loopback):
// tests of the password sources use it.
const (
	PasswordUser = "hexcron_pw"
	Password     = "pgtest-s3cret-pw"
)

// Server is one running throwaway cluster.
type Server struct {
	Dir  string // the temporary directory holding the data directory and the socket
	Port int
	bin  string
	cred *syscall.Credential // run as this user (nil: as ourselves)
	cmd  *exec.Cmd
	logf *os.File
	mu   sync.Mutex
	n    int // databases created
}

// BinDir finds the PostgreSQL server binaries: $HEXCRON_PG_BIN, else the newest of
// /usr/lib/postgresql/*/bin holding initdb, 15 preferred. "" when none.
func BinDir() string {
	if d := os.Getenv("HEXCRON_PG_BIN"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			return ""
		}
		return d
	}
	if _, err := os.Stat("/usr/lib/postgresql/15/bin/initdb"); err == nil {
		return "/usr/lib/postgresql/15/bin"
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	if len(dirs) > 0 {
		return filepath.Dir(dirs[0])
	}
	return ""
}

func version(initdb string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return v
}

// Install runs apt-get install postgresql (as root), serialised with other test
// processes by a lock file: what .ci/run does, for a test binary run under CI=true on
// a machine that lacks it.
func Install() error {
	if os.Geteuid() != 0 {
		return errors.New("not root: cannot apt-get install postgresql")
	}
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "hexcron-pgtest-install.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	if BinDir() != "" {
		return nil // another process installed it meanwhile
	}
	var out bytes.Buffer
	for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "--no-install-recommends", "postgresql"}} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("apt-get %s: %w\n%s", args[0], err, out.String())
		}
	}
	if BinDir() == "" {
		return errors.New("apt-get install postgresql left no /usr/lib/postgresql/*/bin/initdb")
	}
	return nil
}

// Start makes and starts a new cluster. Stop removes it.
func Start(ctx context.Context) (*Server, error) {
	bin := BinDir()
	if bin == "" {
		return nil, errors.New("no PostgreSQL server binaries (apt-get install postgresql, or set HEXCRON_PG_BIN)")
	}
	dir, err := os.MkdirTemp("", "hexcron-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, bin: bin}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root: the cluster belongs to nobody.
		u, err := user.Lookup("nobody")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root and no user nobody to run PostgreSQL as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	if err := s.initdb(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	for try := 0; ; try++ {
		if s.Port, err = freePort(); err != nil {
			s.Stop()
			return nil, err
		}
		if err = s.start(ctx); err == nil {
			break
		}
		if try == 3 {
			s.Stop()
			return nil, err
		}
	}
	if err := s.psql(ctx, "postgres", fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", PasswordUser, Password)); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) data() string { return filepath.Join(s.Dir, "data") }

func (s *Server) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, name), args...)
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	return cmd
}

func (s *Server) initdb(ctx context.Context) error {
	cmd := s.command(ctx, "initdb", "-D", s.data(), "-U", Superuser, "--auth-local=trust", "--auth-host=scram-sha-256",
		"-E", "UTF8", "--no-sync", "--no-instructions")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	// The superuser is trusted on loopback; every other role logs in with its password.
	hba := "local all all trust\nhost all " + Superuser + " 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
	if err := os.WriteFile(filepath.Join(s.data(), "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return err
	}
	if s.cred != nil {
		return os.Chown(filepath.Join(s.data(), "pg_hba.conf"), int(s.cred.Uid), int(s.cred.Gid))
	}
	return nil
}

// start runs postgres in the foreground of a child process and waits until it accepts
// connections.
func (s *Server) start(ctx context.Context) error {
	logf, err := os.OpenFile(filepath.Join(os.TempDir(), filepath.Base(s.Dir)+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := s.command(context.Background(), "postgres", "-D", s.data(), "-p", strconv.Itoa(s.Port), "-k", s.Dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off", // a crash of the server (not of the machine) loses no commit: the page cache keeps them
		"-c", "max_connections=200", "-c", "shared_buffers=32MB")
	cmd.Stdout, cmd.Stderr = logf, logf
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start postgres: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
		if err == nil {
			c.Close()
			if s.psql(ctx, "postgres", "SELECT 1") == nil {
				break
			}
		}
		select {
		case err := <-exited:
			logf.Close()
			b, _ := os.ReadFile(logf.Name())
			return fmt.Errorf("postgres exited at start: %v\n%s", err, tail(b))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			logf.Close()
			return errors.New("postgres did not accept connections within 30s")
		}
	}
	s.mu.Lock()
	s.cmd, s.logf = cmd, logf
	s.mu.Unlock()
	return nil
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// URL is the URL of database name as the trusted superuser.
func (s *Server) URL(name string) string {
	return fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable", Superuser, s.Addr(), name)
}

// PasswordURL is the URL of database name as PasswordUser (without the password).
func (s *Server) PasswordURL(name string) string {
	return fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable", PasswordUser, s.Addr(), name)
}

// psql runs one SQL command against database db through the unix socket.
func (s *Server) psql(ctx context.Context, db, sql string) error {
	cmd := s.command(ctx, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", s.Dir, "-p", strconv.Itoa(s.Port), "-U", Superuser, "-d", db, "-c", sql)
	if _, err := os.Stat(cmd.Path); err != nil {
		cmd = exec.CommandContext(ctx, "psql", cmd.Args[1:]...) // Debian puts psql in the bin dir too; else PATH
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("psql %q: %w\n%s", sql, err, out)
	}
	return nil
}

// Exec runs SQL on database db as the superuser.
func (s *Server) Exec(ctx context.Context, db, sql string) error { return s.psql(ctx, db, sql) }

// NewDatabase creates an empty database (owned by the superuser, PasswordUser may use
// it) and returns its name.
func (s *Server) NewDatabase(ctx context.Context) (string, error) {
	s.mu.Lock()
	s.n++
	name := fmt.Sprintf("t%d", s.n)
	s.mu.Unlock()
	if err := s.psql(ctx, "postgres", "CREATE DATABASE "+name); err != nil {
		return "", err
	}
	if err := s.psql(ctx, name, "GRANT ALL ON SCHEMA public TO "+PasswordUser+"; GRANT ALL ON DATABASE "+name+" TO "+PasswordUser); err != nil {
		return "", err
	}
	return name, nil
}

// Restart stops the server the way a crash or a restart of the service does
// (immediate: no checkpoint, every connection dropped) and starts it again on the
// same port.
func (s *Server) Restart(ctx context.Context) error {
	s.kill(syscall.SIGQUIT) // immediate shutdown
	return s.start(ctx)
}

// Kill stops the server at once (immediate shutdown: every connection dropped).
func (s *Server) Kill() { s.kill(syscall.SIGQUIT) }

// StartAgain starts a killed server again, on the same port.
func (s *Server) StartAgain(ctx context.Context) error { return s.start(ctx) }

// Stop stops the server and removes its directory.
func (s *Server) Stop() {
	s.kill(syscall.SIGQUIT)
	os.RemoveAll(s.Dir)
	os.Remove(filepath.Join(os.TempDir(), filepath.Base(s.Dir)+".log"))
}

func (s *Server) kill(sig syscall.Signal) {
	s.mu.Lock()
	cmd, logf := s.cmd, s.logf
	s.cmd, s.logf = nil, nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	deadline := time.Now().Add(10 * time.Second)
	for cmd.Process.Signal(syscall.Signal(0)) == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	// The postmaster's children (backends) leave with it; make sure none linger.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if logf != nil {
		logf.Close()
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

var (
	sharedOnce sync.Once
	shared     *Server
	sharedErr  error
)

// Shared returns the cluster shared by the tests of this test binary (started on first
// use; Main stops it), or skips t when PostgreSQL is not installed (fails it under
// CI=true, after trying to install it).
func Shared(t testing.TB) *Server {
	t.Helper()
	sharedOnce.Do(func() {
		if BinDir() == "" && os.Getenv("CI") == "true" {
			if err := Install(); err != nil {
				sharedErr = fmt.Errorf("install PostgreSQL: %w", err)
				return
			}
		}
		if BinDir() == "" {
			sharedErr = errSkip
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		shared, sharedErr = Start(ctx)
	})
	switch {
	case errors.Is(sharedErr, errSkip):
		t.Skip("PostgreSQL tests skipped: no PostgreSQL server binaries on this machine (apt-get install postgresql, " +
			"or set HEXCRON_PG_BIN to the directory holding initdb); under CI=true they run")
	case sharedErr != nil:
		t.Fatalf("PostgreSQL: %v", sharedErr)
	}
	return shared
}

var errSkip = errors.New("skip")

// NewURL creates a fresh database on the shared cluster and returns its URL (as the
// trusted superuser).
func NewURL(t testing.TB) string {
	t.Helper()
	s := Shared(t)
	name, err := s.NewDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s.URL(name)
}

// Main runs the tests and stops the shared cluster, if one was started: call it from
// TestMain as os.Exit(pgtest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if shared != nil {
		shared.Stop()
	}
	return code
}

// Log returns the end of the log of the shared cluster's server, for a failing test to show.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(os.TempDir(), filepath.Base(s.Dir)+".log"))
	return strings.TrimSpace(tail(b))
}
