package hexclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"hexcron/clock"
)

// pipeListener is an in-memory net.Listener: inside a synctest bubble, goroutines
// blocked on its connections are durably blocked, so fake time can advance.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error { l.once.Do(func() { close(l.closed) }); return nil }

func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }

func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.closed:
		return nil, &net.OpError{Op: "dial", Net: "pipe", Err: errors.New("connection refused")}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// pipeHTTP serves h over in-memory connections and returns a client for it. The
// server is closed when the test ends.
func pipeHTTP(t *testing.T, h http.Handler) *http.Client {
	ln := newPipeListener()
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return &http.Client{Transport: &http.Transport{DialContext: ln.dial, DisableKeepAlives: true}}
}

// step is the fake's scripted answer to one RunProject request.
type step struct {
	status int               // response status (0: 201 with a created run)
	create bool              // create a run even though the status is not 201
	header map[string]string // response headers
	body   string            // response body (default: Hex-like JSON)
	hang   bool              // block until the client gives up (after creating if create)
	drop   bool              // hijack and close the connection without answering
}

type fakeRun struct {
	id, project string
	start       time.Time
	status      Status
}

// fakeHex is a scripted, hand-written Hex for the tests of this package.
type fakeHex struct {
	t         *testing.T
	mu        sync.Mutex
	token     string // the valid token ("" accepts any)
	script    []step
	runs      []fakeRun
	posts     []time.Time // arrival of each RunProject
	lists     []time.Time // arrival of each GetProjectRuns
	probes    int         // ListProjects calls
	agents    []string
	seq       int
	listFails int // answer this many GetProjectRuns with 500
	hideRuns  time.Duration
	echo      bool // echo the Authorization header into error bodies ({{AUTH}} in steps)
}

func (f *fakeHex) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now() // inside a bubble: fake time
	f.mu.Lock()
	f.agents = append(f.agents, r.Header.Get("User-Agent"))
	if f.token != "" && r.Header.Get("Authorization") != "Bearer "+f.token {
		if r.Method == http.MethodPost {
			f.posts = append(f.posts, now)
		}
		if r.Method == http.MethodGet && r.URL.Path == "/api/v1/projects" {
			f.probes++
		}
		f.mu.Unlock()
		w.Header().Set("x-trace-id", "trace-401")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, "Unauthorized")
		if f.echo {
			io.WriteString(w, ": "+r.Header.Get("Authorization"))
		}
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/api/v1")
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case r.Method == http.MethodPost && len(parts) == 3 && parts[0] == "projects" && parts[2] == "runs":
		f.posts = append(f.posts, now)
		st := step{}
		if len(f.script) > 0 {
			st, f.script = f.script[0], f.script[1:]
		}
		var run *fakeRun
		if (st.status == 0 && !st.hang && !st.drop) || st.status == http.StatusCreated || st.create {
			f.seq++
			f.runs = append(f.runs, fakeRun{id: fmt.Sprintf("run-%d", f.seq), project: parts[1], start: now, status: StatusPending})
			run = &f.runs[len(f.runs)-1]
		}
		f.mu.Unlock()
		auth := r.Header.Get("Authorization")
		for k, v := range st.header {
			w.Header().Set(k, strings.ReplaceAll(v, "{{AUTH}}", auth))
		}
		switch {
		case st.hang:
			io.Copy(io.Discard, r.Body) // lets the server notice the client hanging up
			<-r.Context().Done()
			return
		case st.drop:
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		status := st.status
		if status == 0 {
			status = http.StatusCreated
		}
		body := st.body
		if body == "" && status == http.StatusCreated {
			body = fmt.Sprintf(`{"projectId":%q,"runId":%q,"runUrl":"https://app.hex.tech/run/%s","runStatusUrl":"https://app.hex.tech/api/v1/projects/%s/runs/%s","traceId":"trace-%s","projectVersion":3}`,
				parts[1], run.id, run.id, parts[1], run.id, run.id)
		}
		if body == "" {
			body = fmt.Sprintf(`{"reason":"status %d","traceId":"trace-err"}`, status)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, strings.ReplaceAll(body, "{{AUTH}}", auth))
	case r.Method == http.MethodGet && len(parts) == 3 && parts[0] == "projects" && parts[2] == "runs":
		f.lists = append(f.lists, now)
		if f.listFails > 0 {
			f.listFails--
			f.mu.Unlock()
			w.WriteHeader(http.StatusInternalServerError)
			if f.echo {
				fmt.Fprintf(w, `{"reason":"boom %s","traceId":%q}`, r.Header.Get("Authorization"), r.Header.Get("Authorization"))
			}
			return
		}
		type wire struct {
			ProjectID  string  `json:"projectId"`
			RunID      string  `json:"runId"`
			RunURL     string  `json:"runUrl"`
			Status     string  `json:"status"`
			RunTrigger string  `json:"runTrigger"`
			StartTime  string  `json:"startTime"`
			EndTime    *string `json:"endTime"`
			TraceID    string  `json:"traceId"`
		}
		var out []wire
		for i := len(f.runs) - 1; i >= 0; i-- { // newest first
			fr := f.runs[i]
			if fr.project != parts[1] || now.Sub(fr.start) < f.hideRuns {
				continue
			}
			out = append(out, wire{fr.project, fr.id, "https://app.hex.tech/run/" + fr.id, string(fr.status), "API", fr.start.UTC().Format(time.RFC3339Nano), nil, "trace-list"})
		}
		f.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"runs": out, "nextPage": nil, "previousPage": nil, "traceId": "trace-list"})
	case r.Method == http.MethodGet && len(parts) == 1 && parts[0] == "projects":
		f.probes++
		f.mu.Unlock()
		io.WriteString(w, `{"values":[{"id":"p","title":"P","type":"PROJECT","lastPublishedAt":"2026-01-01T00:00:00Z"}],"pagination":{"after":null,"before":null}}`)
	default:
		f.mu.Unlock()
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"reason":"no such route","traceId":"trace-404"}`)
	}
}

func (f *fakeHex) snapshot() (posts, lists []time.Time, runs []fakeRun) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.posts...), append([]time.Time(nil), f.lists...), append([]fakeRun(nil), f.runs...)
}

// recObserver counts Observer calls.
type recObserver struct {
	mu        sync.Mutex
	triggers  map[string]int
	n429      int
	reconcile map[string]int
	holds     []string
}

func newRecObserver() *recObserver {
	return &recObserver{triggers: map[string]int{}, reconcile: map[string]int{}}
}
func (o *recObserver) OnTrigger(s string) { o.mu.Lock(); o.triggers[s]++; o.mu.Unlock() }
func (o *recObserver) On429(bool)         { o.mu.Lock(); o.n429++; o.mu.Unlock() }
func (o *recObserver) OnReconcile(s string) {
	o.mu.Lock()
	o.reconcile[s]++
	o.mu.Unlock()
}
func (o *recObserver) OnHold(r string, _ time.Time) {
	o.mu.Lock()
	o.holds = append(o.holds, r)
	o.mu.Unlock()
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// testClient builds a Client against h with a deterministic rand and a text log.
func testClient(t *testing.T, h http.Handler, tok TokenSource, mod func(*Config)) (*Client, *syncBuffer, *recObserver) {
	t.Helper()
	logs := &syncBuffer{}
	obs := newRecObserver()
	cfg := Config{
		BaseURL:    "http://127.0.0.1:1/api/v1",
		Token:      tok,
		Version:    "1.2.3",
		HTTPClient: pipeHTTP(t, h),
		Clock:      clock.System{},
		Rand:       rand.New(rand.NewPCG(1, 2)),
		Logger:     slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Observer:   obs,
		Timeout:    10 * time.Second,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, logs, obs
}
