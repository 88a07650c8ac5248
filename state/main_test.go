package state

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
)

// helperEnv selects a helper mode: the test binary re-executes itself to get a second
// OS process (two admitters, a lock holder killed with SIGKILL, an unprivileged opener).
const helperEnv = "HEXCRON_STATE_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode, os.Args[len(os.Args)-1]))
	}
	os.Exit(m.Run())
}

// helperCmd returns a command running this test binary in helper mode with one argument.
func helperCmd(t *testing.T, mode, arg string, env ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$", arg)
	cmd.Env = append(append(os.Environ(), helperEnv+"="+mode), env...)
	cmd.Stderr = os.Stderr
	return cmd
}

func runHelper(mode, arg string) int {
	ctx := context.Background()
	switch mode {
	case "lock":
		// Hold the daemon lock of arg until killed.
		db, err := Open(ctx, arg, Options{})
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		if err := db.LockDaemon(); err != nil {
			fmt.Println("error:", err)
			return 1
		}
		// Leave a committed write in the WAL, to be found after kill -9.
		if err := db.SetHeartbeat(ctx, t0); err != nil {
			fmt.Println("error:", err)
			return 1
		}
		fmt.Println("locked")
		bufio.NewReader(os.Stdin).ReadString('\n') // block until killed or stdin closes
		return 0
	case "open":
		// Print the error Open returns for arg (used unprivileged, for read-only tests).
		_, err := Open(ctx, arg, Options{})
		fmt.Println(errText(err))
		return 0
	case "admit":
		var cfg admitConfig
		if err := json.Unmarshal([]byte(arg), &cfg); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		res, err := admitLoop(ctx, cfg)
		if err != nil {
			fmt.Fprintln(os.Stderr, "admit helper:", err)
			return 1
		}
		b, _ := json.Marshal(res)
		fmt.Println(string(b))
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
	return 2
}

func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// rule is a sliding-window limit used by the tests' decide function.
type rule struct {
	Limit int
	Per   time.Duration
}

// slidingDecide is a minimal correct admission rule for tests: an attempt is admitted at
// now when, for every rule, fewer than Limit attempts were sent after now-Per (including
// attempts other processes recorded with a later Sent than now).
func slidingDecide(now time.Time, rules []rule) func([]Attempt) time.Duration {
	return func(as []Attempt) time.Duration {
		var wait time.Duration
		for _, r := range rules {
			start := now.Add(-r.Per)
			var in []time.Time
			for _, a := range as {
				if a.Sent.After(start) {
					in = append(in, a.Sent)
				}
			}
			if len(in) >= r.Limit {
				// The oldest must leave the window before there is room.
				w := in[len(in)-r.Limit].Add(r.Per).Sub(now) + time.Millisecond
				if w <= 0 {
					w = time.Millisecond
				}
				wait = max(wait, w)
			}
		}
		return wait
	}
}

// violations brute-forces every window [sent_i, sent_i+Per) and returns a description of
// each one holding more than Limit attempts.
func violations(as []Attempt, rules []rule) []string {
	var out []string
	for _, r := range rules {
		for _, a := range as {
			n := 0
			for _, b := range as {
				if !b.Sent.Before(a.Sent) && b.Sent.Before(a.Sent.Add(r.Per)) {
					n++
				}
			}
			if n > r.Limit {
				out = append(out, fmt.Sprintf("%d attempts in [%s, +%s) > %d",
					n, a.Sent.Format(time.RFC3339Nano), r.Per, r.Limit))
			}
		}
	}
	return out
}

type admitConfig struct {
	Path     string
	Rules    []rule
	Duration time.Duration
	MaxCalls int
	Since    time.Duration // how far back Admit loads attempts
}

type admitResult struct {
	PID      int
	Calls    int // Admit calls
	Admitted int // calls that recorded an attempt
	Elapsed  time.Duration
}

// admitLoop calls Admit as fast as it can for cfg.Duration (or cfg.MaxCalls calls),
// completing each admitted attempt at once. Any error (SQLITE_BUSY included) ends it.
func admitLoop(ctx context.Context, cfg admitConfig) (admitResult, error) {
	db, err := Open(ctx, cfg.Path, Options{})
	if err != nil {
		return admitResult{}, err
	}
	defer db.Close()
	res := admitResult{PID: os.Getpid()}
	start := time.Now()
	for time.Since(start) < cfg.Duration && res.Calls < cfg.MaxCalls {
		now := time.Now().Truncate(time.Millisecond)
		res.Calls++
		id, wait, err := db.Admit(ctx, Holder{}, now, now.Add(-cfg.Since), "", slidingDecide(now, cfg.Rules))
		if err != nil {
			return res, fmt.Errorf("call %d: %w", res.Calls, err)
		}
		if wait > 0 {
			continue // spin: maximum contention on the write lock
		}
		res.Admitted++
		if err := db.Complete(ctx, id, time.Now()); err != nil {
			return res, fmt.Errorf("complete %d: %w", id, err)
		}
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// rawDB opens path with go-sqlite3 directly (no hexcron checks or migrations), for
// preparing foreign, corrupt or future files.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db := sql.OpenDB(&connector{dsn: dsn(path, nil)})
	t.Cleanup(func() { db.Close() })
	return db
}

func mustExec(t *testing.T, db *sql.DB, q string) {
	t.Helper()
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// openT opens a fresh database in a temp dir.
func openT(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), t.TempDir()+"/hexcron.db", Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
