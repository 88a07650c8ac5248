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
	"os"
	"path/filepath"
	"strconv"
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

// TestOutcomesEndToEnd drives each outcome class of the trigger protocol through
// hexclient.Trigger against hexsim and checks both what the caller got and what Hex
// saw (hexsim's ledger: requests, answers, runs created, arrival times).
func TestOutcomesEndToEnd(t *testing.T) {
	t.Run("201", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newSimEnv(t, hexsim.Config{}, nil)
			got, err := e.trigger("s@1", projA, hexclient.RunRequest{})
			if err != nil || got.Adopted || got.Attempts != 1 || !got.Sent.Equal(e.t0) {
				t.Fatalf("got %+v, %v", got, err)
			}
			p := e.posts()
			wantStatuses(t, "RunProject", p, 201)
			if p[0].RunCreated != got.RunID || p[0].TraceID != got.TraceID || !p[0].Time.Equal(e.t0) {
				t.Fatalf("ledger %+v, got %+v", p[0], got)
			}
			if !strings.HasSuffix(got.RunStatusURL, "/projects/"+projA+"/runs/"+got.RunID) {
				t.Fatalf("run status url %q", got.RunStatusURL)
			}
			wantOneRun(t, e, got)
		})
	})

	for _, tc := range []struct {
		style      hexsim.RetryStyle
		unit       hexsim.ResetUnit
		minWait    time.Duration // the retry may not arrive earlier than this after the 429
		maxWait    time.Duration
		wantHeader string
	}{
		{hexsim.StyleRetryAfter, "", 45 * time.Second, 45 * time.Second, "Retry-After"},
		{hexsim.StyleReset, "", 45 * time.Second, 46 * time.Second, "RateLimit-Reset"},
		{hexsim.StyleNone, "", 0, 5 * time.Second, ""}, // RateLimitBackoff: full jitter in [0, 5s]
		// X-RateLimit-Reset alone, in each unit Hex might use: read as such, never as an
		// hour (a unix-millisecond value read as seconds lies 50,000 years ahead).
		{hexsim.StyleXRateLimit, hexsim.ResetUnix, 45 * time.Second, 46 * time.Second, "X-RateLimit-Reset"},
		{hexsim.StyleXRateLimit, hexsim.ResetUnixMilli, 45 * time.Second, 45 * time.Second, "X-RateLimit-Reset"},
		{hexsim.StyleXRateLimit, hexsim.ResetSeconds, 45 * time.Second, 45 * time.Second, "X-RateLimit-Reset"},
	} {
		name := "429 " + string(tc.style)
		if tc.unit != "" {
			name += " reset " + string(tc.unit)
		}
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newSimEnv(t, hexsim.Config{Limits: hexsim.Limits{Style: tc.style, ResetUnit: tc.unit},
					Faults: hexsim.Faults{Next: []hexsim.Fault{hexsim.FaultTooMany}, RetryAfter: 45 * time.Second}}, nil)
				got, err := e.trigger("s@1", projA, hexclient.RunRequest{})
				if err != nil || got.Attempts != 2 || got.Adopted {
					t.Fatalf("got %+v, %v", got, err)
				}
				p := e.posts()
				wantStatuses(t, "RunProject", p, 429, 201)
				if p[0].RunCreated != "" || p[1].RunCreated != got.RunID {
					t.Fatalf("ledger %+v", p)
				}
				if h := tc.wantHeader; h != "" && e.hdrs.got[0].Get(h) == "" {
					t.Fatalf("the 429 had no %s header: %v", h, e.hdrs.got[0])
				}
				if tc.style == hexsim.StyleNone && (e.hdrs.got[0].Get("Retry-After") != "" || e.hdrs.got[0].Get("RateLimit-Reset") != "") {
					t.Fatalf("style none sent headers %v", e.hdrs.got[0])
				}
				gap := p[1].Time.Sub(p[0].Time)
				if gap < tc.minWait || gap > tc.maxWait || gap == 0 {
					t.Fatalf("retry %s after the 429, want within [%s, %s] and not at once", gap, tc.minWait, tc.maxWait)
				}
				wantOneRun(t, e, got)
			})
		})
	}

	t.Run("503 kernel cap", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newSimEnv(t, hexsim.Config{Limits: hexsim.Limits{Kernels: 1}}, nil)
			first, err := e.trigger("s@1", projA, hexclient.RunRequest{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.trigger("s@2", projA, hexclient.RunRequest{})
			if err != nil || got.Adopted || got.RunID == first.RunID {
				t.Fatalf("got %+v, %v", got, err)
			}
			p := e.posts()
			if len(p) < 3 || p[1].Status != 503 || p[len(p)-1].Status != 201 {
				t.Fatalf("want 201, 503..., 201; got %v", statusesOf(p))
			}
			firstRun, _ := e.sim.Run(first.RunID)
			for _, r := range p[1 : len(p)-1] {
				if r.Status != 503 || r.RunCreated != "" {
					t.Fatalf("a held attempt: %+v", r)
				}
			}
			// Holds are at least 15s (KernelBackoff in [½, 1] of 30s·2ⁿ): no hammering.
			for i := 2; i < len(p); i++ {
				if gap := p[i].Time.Sub(p[i-1].Time); gap < 15*time.Second {
					t.Fatalf("attempt %d only %s after a 503", i+1, gap)
				}
			}
			if last := p[len(p)-1]; last.Time.Before(firstRun.EndTime) || last.RunCreated != got.RunID {
				t.Fatalf("second run created at %s, before the first ended at %s (%+v)", last.Time, firstRun.EndTime, last)
			}
			if n := len(e.sim.Runs()); n != 2 {
				t.Fatalf("%d runs", n)
			}
			if !strings.Contains(e.logs.String(), "running-kernel cap") {
				t.Fatal("no kernel-cap log line")
			}
		})
	})

	for _, tc := range []struct {
		name     string
		fault    hexsim.Fault
		status   int // hexsim's ledger status of the faulty attempt (0: dropped)
		adopted  bool
		minDelay time.Duration // the listing comes at least this long after the attempt was sent
	}{
		{"5xx after create", hexsim.Fault5xxAfterCreate, 500, true, 10 * time.Second},
		{"5xx before create", hexsim.Fault5xxBeforeCreate, 502, false, 10 * time.Second},
		{"connection drop after create", hexsim.FaultDrop, 0, true, 10 * time.Second},
		{"timeout (answer delayed past the attempt timeout)", hexsim.FaultDelay, 201, true, 30*time.Second + 10*time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newSimEnv(t, hexsim.Config{Faults: hexsim.Faults{Next: []hexsim.Fault{tc.fault}, Delay: 2 * time.Minute}}, nil)
				got, err := e.trigger("s@1", projA, hexclient.RunRequest{})
				if err != nil || got.Adopted != tc.adopted {
					t.Fatalf("got %+v, %v; want adopted=%v", got, err, tc.adopted)
				}
				p := e.posts()
				lists := e.ops("GetProjectRuns")
				if len(lists) == 0 {
					t.Fatal("the ambiguous outcome was not resolved by listing the project's runs")
				}
				if d := lists[0].Time.Sub(p[0].Time); d < tc.minDelay {
					t.Fatalf("listed %s after the attempt, want at least %s", d, tc.minDelay)
				}
				if tc.status == 201 && p[0].Status != 0 && p[0].Status != 201 {
					t.Fatalf("delayed attempt answered %d", p[0].Status)
				} else if tc.status != 201 && p[0].Status != tc.status {
					t.Fatalf("faulty attempt: hexsim status %d, want %d", p[0].Status, tc.status)
				}
				if tc.adopted {
					// The run the ambiguous attempt created is adopted, never re-POSTed.
					if len(p) != 1 || got.Attempts != 1 || p[0].RunCreated != got.RunID {
						t.Fatalf("ledger %+v, got %+v", p, got)
					}
				} else {
					if len(p) != 2 || p[0].RunCreated != "" || p[1].RunCreated != got.RunID || got.Attempts != 2 {
						t.Fatalf("ledger %+v, got %+v", p, got)
					}
					// In hexsim's ledger order: POST, listing, POST.
					var order []string
					for _, r := range e.sim.Requests() {
						order = append(order, r.Op)
					}
					if fmt.Sprint(order) != "[RunProject GetProjectRuns RunProject]" {
						t.Fatalf("requests %v: the re-POST must follow a listing that showed no run", order)
					}
				}
				wantOneRun(t, e, got)
			})
		})
	}

	t.Run("409 while the project has a run going", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newSimEnv(t, hexsim.Config{Runs: hexsim.Lifecycle{Conflict409: true}}, nil)
			first, err := e.trigger("s@1", projA, hexclient.RunRequest{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.trigger("s@2", projA, hexclient.RunRequest{})
			if err != nil || got.Adopted || got.RunID == first.RunID {
				t.Fatalf("got %+v, %v (first %s)", got, err, first.RunID)
			}
			p := e.posts()
			firstRun, _ := e.sim.Run(first.RunID)
			if p[1].Status != 409 || p[len(p)-1].Status != 201 || p[len(p)-1].RunCreated != got.RunID {
				t.Fatalf("want 201, 409..., 201; got %v", statusesOf(p))
			}
			for _, r := range p[1 : len(p)-1] {
				if r.Status != 409 || r.RunCreated != "" || r.Time.After(firstRun.EndTime) {
					t.Fatalf("attempt %+v (first run ended %s)", r, firstRun.EndTime)
				}
			}
			if n := len(e.sim.Runs()); n != 2 {
				t.Fatalf("%d runs, want 2: the first run must not be adopted for the second slot", n)
			}
		})
	})

	t.Run("422 unpublished project", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newSimEnv(t, hexsim.Config{Projects: []hexsim.Project{{ID: projDraf, Title: "Draft"}}}, nil)
			got, err := e.trigger("s@1", projDraf, hexclient.RunRequest{})
			var ae *hexclient.APIError
			if got != nil || !errors.As(err, &ae) || ae.Status != 422 || ae.Class != hexclient.ClassPermanent ||
				!strings.Contains(ae.Reason, "not been published") {
				t.Fatalf("got %+v, %v", got, err)
			}
			time.Sleep(time.Hour) // nothing is retried later either
			p := e.posts()
			wantStatuses(t, "RunProject", p, 422)
			if ae.TraceID != p[0].TraceID || len(e.sim.Runs()) != 0 {
				t.Fatalf("trace %q vs ledger %+v; runs %v", ae.TraceID, p[0], e.sim.Runs())
			}
		})
	})

	// Hex documents that unknown inputs are ignored (the sim's default: the run is
	// created); the choice RejectUnknownInputs answers 422 {invalid, notFound}, a
	// permanent failure.
	t.Run("unknown input ignored (documented)", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newSimEnv(t, hexsim.Config{Projects: []hexsim.Project{{ID: projA, Title: "Daily", Published: true, Inputs: []string{"region"}}}}, nil)
			got, err := e.trigger("s@1", projA, hexclient.RunRequest{InputParams: map[string]any{"colour": "red"}})
			if err != nil {
				t.Fatal(err)
			}
			wantOneRun(t, e, got)
		})
	})
	t.Run("422 unknown input (choice RejectUnknownInputs)", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newSimEnv(t, hexsim.Config{RejectUnknownInputs: true, Projects: []hexsim.Project{{ID: projA, Title: "Daily", Published: true, Inputs: []string{"region"}}}}, nil)
			got, err := e.trigger("s@1", projA, hexclient.RunRequest{InputParams: map[string]any{"colour": "red"}})
			var ae *hexclient.APIError
			if got != nil || !errors.As(err, &ae) || ae.Status != 422 || ae.Class != hexclient.ClassPermanent ||
				!strings.Contains(err.Error(), "colour") {
				t.Fatalf("got %+v, %v", got, err)
			}
			time.Sleep(time.Hour)
			p := e.posts()
			wantStatuses(t, "RunProject", p, 422)
			if ae.TraceID != p[0].TraceID || len(e.sim.Runs()) != 0 {
				t.Fatalf("trace %q vs ledger %+v", ae.TraceID, p[0])
			}
		})
	})

	t.Run("401 after rotation, token file re-read", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "hex-token")
			write := func(tok string) {
				if err := os.WriteFile(file, []byte(tok+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			write(tokOld)
			e := newSimEnv(t, hexsim.Config{Tokens: []string{tokOld}}, func(c *hexclient.Config) {
				c.Token = hexclient.NewFileTokenSource(nil, file)
			})
			if _, err := e.trigger("s@1", projA, hexclient.RunRequest{}); err != nil {
				t.Fatal(err)
			}
			e.sim.RotateToken(tokOld, tokNew) // Hex side: the old token now gets 401
			rotated := time.Now()
			fixAt := rotated.Add(10 * time.Minute)
			go func() { // the operator writes the new token ten minutes later
				time.Sleep(fixAt.Sub(time.Now()))
				write(tokNew)
			}()
			got, err := e.trigger("s@2", projA, hexclient.RunRequest{})
			if err != nil {
				t.Fatal(err)
			}
			p := e.posts()
			wantStatuses(t, "RunProject", p, 201, 401, 201)
			if p[1].Token != tokenHash(tokOld) || p[2].Token != tokenHash(tokNew) || p[2].RunCreated != got.RunID {
				t.Fatalf("ledger %+v", p)
			}
			if p[2].Time.Before(fixAt) {
				t.Fatalf("triggered at %s, before the token was fixed at %s", p[2].Time, fixAt)
			}
			// While paused, only cheap reads probed the token; the first one with the
			// new token succeeded and the trigger followed.
			probes := e.ops("ListProjects")
			if len(probes) < 2 || probes[len(probes)-1].Status != 200 || probes[len(probes)-1].Token != tokenHash(tokNew) {
				t.Fatalf("probes %+v", probes)
			}
			for _, pr := range probes[:len(probes)-1] {
				if pr.Status != 401 || pr.Time.After(fixAt) {
					t.Fatalf("probe %+v", pr)
				}
			}
			logs := e.logs.String()
			if n := strings.Count(logs, "level=ERROR"); n != 1 {
				t.Fatalf("%d ERROR lines, want one per episode:\n%s", n, logs)
			}
			for _, tok := range []string{tokOld, tokNew} {
				if strings.Contains(logs, tok) {
					t.Fatal("a token reached the log")
				}
			}
			if len(e.sim.Runs()) != 2 {
				t.Fatalf("runs %v", e.sim.Runs())
			}
		})
	})
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

// TestRetryAfterHonoured: another client of the same Hex user has used the minute's
// triggers, so hexcron's first attempts get 429s its budget did not predict. Whatever
// the window model and whichever header names the wait, no trigger of hexcron reaches
// hexsim after a 429 and before the instant that 429 named, and every slot gets its run.
func TestRetryAfterHonoured(t *testing.T) {
	type choice struct {
		style hexsim.RetryStyle
		unit  hexsim.ResetUnit
	}
	for _, c := range []choice{{hexsim.StyleRetryAfter, ""}, {hexsim.StyleReset, ""}, {hexsim.StyleBoth, ""},
		{hexsim.StyleXRateLimit, hexsim.ResetUnix}, {hexsim.StyleXRateLimit, hexsim.ResetUnixMilli}, {hexsim.StyleXRateLimit, hexsim.ResetSeconds}} {
		for _, window := range []hexsim.WindowModel{hexsim.WindowFixed, hexsim.WindowAnchored, hexsim.WindowRolling} {
			name := string(c.style) + "/" + string(window)
			if c.unit != "" {
				name = string(c.style) + " reset " + string(c.unit) + "/" + string(window)
			}
			t.Run(name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					testRetryAfterHonoured(t, c.style, c.unit, window)
				})
			})
		}
	}
}

func testRetryAfterHonoured(t *testing.T, style hexsim.RetryStyle, unit hexsim.ResetUnit, window hexsim.WindowModel) {
	const ours, theirs = "hxtp_hexcron", "hxtp_someone_else"
	e := newSimEnv(t, hexsim.Config{Users: []hexsim.User{{Name: "u", Tokens: []string{ours, theirs}}},
		Limits: hexsim.Limits{Window: window, Style: style, ResetUnit: unit, Kernels: -1}},
		func(c *hexclient.Config) { c.Token = hexclient.StaticToken(ours) })
	time.Sleep(17 * time.Second) // not on a minute boundary
	// The other client spends the minute's 20 triggers.
	other, err := hexclient.New(hexclient.Config{BaseURL: simBase, Token: hexclient.StaticToken(theirs),
		HTTPClient: &http.Client{Transport: e.hdrs.next}, Clock: clock.System{}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := other.Trigger(context.Background(), hexclient.TriggerRequest{Slot: fmt.Sprintf("o@%d", i), ProjectID: projA}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if _, err := e.trigger(fmt.Sprintf("s@%d", i), projA, hexclient.RunRequest{}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	var mine []hexsim.Request
	for _, r := range e.posts() {
		if r.Token == tokenHash(ours) {
			mine = append(mine, r)
		}
	}
	e.hdrs.mu.Lock()
	byTrace := map[string]http.Header{} // the answers as the client saw them
	for _, h := range e.hdrs.got {
		byTrace[h.Get("x-trace-id")] = h
	}
	e.hdrs.mu.Unlock()
	n429 := 0
	for _, r := range mine {
		if r.Status != http.StatusTooManyRequests {
			continue
		}
		n429++
		h, ok := byTrace[r.TraceID]
		if !ok {
			t.Fatalf("the client never saw the answer %s", r.TraceID)
		}
		named := namedInstant(t, h, r.Time)
		if !named.After(r.Time) {
			t.Fatalf("429 at %s named %s", r.Time, named)
		}
		for _, later := range mine {
			if later.Time.After(r.Time) && later.Time.Before(named) {
				t.Fatalf("a trigger reached hexsim at %s, after a 429 at %s that named %s", later.Time, r.Time, named)
			}
		}
	}
	if n429 == 0 {
		t.Fatal("no 429: the scenario did not exercise the wait")
	}
	created := 0
	for _, r := range mine {
		if r.RunCreated != "" {
			created++
		}
	}
	if created != 8 {
		t.Fatalf("%d runs for 8 slots; answers %v", created, statusesOf(mine))
	}
	if !strings.Contains(e.logs.String(), "probably another client triggers as this Hex user") {
		t.Fatal("no WARN about another client")
	}
}

// namedInstant is the instant a 429 named: Retry-After (seconds), else RateLimit-Reset
// (seconds from now), else X-RateLimit-Reset (unix seconds, unix milliseconds or
// seconds from now, hexsim's ResetUnit choices).
func namedInstant(t *testing.T, h http.Header, at time.Time) time.Time {
	t.Helper()
	if v := h.Get("Retry-After"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("Retry-After %q", v)
		}
		return at.Add(time.Duration(n) * time.Second)
	}
	if v := h.Get("RateLimit-Reset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("RateLimit-Reset %q", v)
		}
		return at.Add(time.Duration(n) * time.Second)
	}
	if v := h.Get("X-RateLimit-Reset"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("X-RateLimit-Reset %q", v)
		}
		switch {
		case n >= 1e11: // unix milliseconds
			return time.UnixMilli(n)
		case n >= 1e8: // unix seconds
			return time.Unix(n, 0)
		}
		return at.Add(time.Duration(n) * time.Second)
	}
	t.Fatalf("a 429 without a header naming the wait: %v", h)
	return time.Time{}
}
