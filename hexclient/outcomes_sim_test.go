package hexclient_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"hexcron/clock"
	"hexcron/hexclient"
	"hexcron/hexclient/hexsim"
)

const (
	simBase  = "http://127.0.0.1/api/v1" // PipeNet ignores the address; loopback passes the https check
	projA    = "0b7f3c2a-1d4e-4f5a-9b6c-7d8e9f0a1b2c"
	projDraf = "1c8a4d3b-2e5f-4a6b-8c7d-8e9f0a1b2c3d"
	tokOld   = "hxtp_before_rotation"
	tokNew   = "hxtp_after_rotation"
)

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// headerLog keeps the response headers of every RunProject answer, by arrival order.
type headerLog struct {
	next http.RoundTripper
	mu   sync.Mutex
	got  []http.Header
}

func (h *headerLog) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := h.next.RoundTrip(r)
	if err == nil && r.Method == http.MethodPost {
		h.mu.Lock()
		h.got = append(h.got, res.Header.Clone())
		h.mu.Unlock()
	}
	return res, err
}

// simEnv is a hexsim served over an in-memory network and a hexclient talking to it,
// for use inside a synctest bubble.
type simEnv struct {
	sim  *hexsim.Server
	c    *hexclient.Client
	logs *syncBuffer
	hdrs *headerLog
	t0   time.Time
}

func newSimEnv(t *testing.T, sc hexsim.Config, mod func(*hexclient.Config)) *simEnv {
	t.Helper()
	if sc.Seed == 0 {
		sc.Seed = 1
	}
	sim := hexsim.New(sc)
	pn := hexsim.NewPipeNet()
	stop := pn.Serve(sim)
	tr := pn.Transport()
	t.Cleanup(func() { tr.CloseIdleConnections(); stop() })
	e := &simEnv{sim: sim, logs: &syncBuffer{}, hdrs: &headerLog{next: tr}, t0: time.Now()}
	cfg := hexclient.Config{BaseURL: simBase, Token: hexclient.StaticToken("hxtp_abc"),
		HTTPClient: &http.Client{Transport: e.hdrs}, Clock: clock.System{}, Rand: rand.New(rand.NewPCG(7, 7)),
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if mod != nil {
		mod(&cfg)
	}
	c, err := hexclient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.c = c
	return e
}

func (e *simEnv) trigger(slot, project string, body hexclient.RunRequest) (*hexclient.Triggered, error) {
	return e.c.Trigger(context.Background(), hexclient.TriggerRequest{Slot: slot, ProjectID: project, Body: body,
		Deadline: e.t0.Add(6 * time.Hour)})
}

// posts returns hexsim's ledger entries for RunProject.
func (e *simEnv) posts() []hexsim.Request {
	var out []hexsim.Request
	for _, r := range e.sim.Requests() {
		if r.Op == "RunProject" {
			out = append(out, r)
		}
	}
	return out
}

func (e *simEnv) ops(op string) []hexsim.Request {
	var out []hexsim.Request
	for _, r := range e.sim.Requests() {
		if r.Op == op {
			out = append(out, r)
		}
	}
	return out
}

func tokenHash(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return "sha256:" + hex.EncodeToString(sum[:6])
}

func statusesOf(rs []hexsim.Request) []int {
	out := make([]int, len(rs))
	for i, r := range rs {
		out[i] = r.Status
	}
	return out
}

func wantStatuses(t *testing.T, what string, rs []hexsim.Request, want ...int) {
	t.Helper()
	if got := statusesOf(rs); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s: hexsim answered %v, want %v", what, got, want)
	}
}

// wantOneRun checks that hexsim holds exactly one run and that it is the one returned.
func wantOneRun(t *testing.T, e *simEnv, got *hexclient.Triggered) {
	t.Helper()
	runs := e.sim.Runs()
	if len(runs) != 1 || got == nil || runs[0].ID != got.RunID {
		t.Fatalf("hexsim holds runs %+v; Trigger returned %+v", runs, got)
	}
}

// TestReadAuthPausesTriggers: a 401 on a read (a poll) enters the same pause as a
// trigger's 401: one ERROR, no RunProject spent on the refused token, and the first
// read that succeeds with the token source's current value ends the pause.
func TestReadAuthPausesTriggers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		cur := tokOld
		src := tokenFunc(func() (string, error) { mu.Lock(); defer mu.Unlock(); return cur, nil })
		e := newSimEnv(t, hexsim.Config{Tokens: []string{tokOld}}, func(c *hexclient.Config) { c.Token = src })
		first, err := e.trigger("s@1", projA, hexclient.RunRequest{})
		if err != nil {
			t.Fatal(err)
		}
		e.sim.RotateToken(tokOld, tokNew)
		for range 3 { // the poller keeps polling
			_, err := e.c.GetRunStatus(context.Background(), projA, first.RunID)
			var ae *hexclient.APIError
			if !errors.As(err, &ae) || ae.Class != hexclient.ClassAuth || ae.Status != 401 {
				t.Fatalf("GetRunStatus after rotation: %v", err)
			}
		}
		if n := strings.Count(e.logs.String(), "level=ERROR"); n != 1 {
			t.Fatalf("%d ERROR lines after three refused reads, want 1:\n%s", n, e.logs.String())
		}
		// A trigger now waits for the pause instead of spending an attempt on the old token.
		done := make(chan *hexclient.Triggered)
		go func() {
			got, err := e.trigger("s@2", projA, hexclient.RunRequest{})
			if err != nil {
				t.Error(err)
			}
			done <- got
		}()
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		for _, r := range e.posts()[1:] {
			t.Fatalf("RunProject sent while paused: %+v", r)
		}
		mu.Lock()
		cur = tokNew
		mu.Unlock()
		got := <-done
		p := e.posts()
		wantStatuses(t, "RunProject", p, 201, 201)
		if p[1].Token != tokenHash(tokNew) || p[1].RunCreated != got.RunID {
			t.Fatalf("ledger %+v", p)
		}
		if _, err := e.c.GetRunStatus(context.Background(), projA, first.RunID); err != nil {
			t.Fatalf("read after the fix: %v", err)
		}
		if n := strings.Count(e.logs.String(), "triggering resumes"); n != 1 {
			t.Fatalf("%d resume lines, want 1", n)
		}
	})
}

type tokenFunc func() (string, error)

func (f tokenFunc) Token() (string, error) { return f() }

