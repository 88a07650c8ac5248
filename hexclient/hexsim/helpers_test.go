package hexsim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

const (
	base  = "http://hexsim/api/v1"
	tokA  = "hxtp_alice1"
	tokB  = "hxtp_bob1"
	proj1 = "0b7f3c2a-1d4e-4f5a-9b6c-7d8e9f0a1b2c"
	proj2 = "1c8a4d3b-2e5f-4a6b-8c7d-8e9f0a1b2c3d"
	proj3 = "3e0c6f5d-4a71-4c8d-8e9f-0a1b2c3d4e5f"
)

// harness is a sim served over an in-memory network, for use inside a synctest bubble.
type harness struct {
	t      *testing.T
	sim    *Server
	client *http.Client
	tr     *http.Transport
	stop   func()
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	sim := New(cfg)
	pn := NewPipeNet()
	stop := pn.Serve(sim)
	tr := pn.Transport()
	h := &harness{t: t, sim: sim, client: &http.Client{Transport: tr}, tr: tr, stop: stop}
	t.Cleanup(h.close)
	return h
}

func (h *harness) close() {
	h.tr.CloseIdleConnections()
	h.stop()
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %d body %q: %v", r.status, r.body, err)
	}
}

// do sends one request; path is relative to base unless it starts with "http" or "/_sim".
func (h *harness) do(method, path, token string, body any) resp {
	h.t.Helper()
	r, err := h.try(method, path, token, body)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

func (h *harness) try(method, path, token string, body any) (resp, error) {
	url := path
	switch {
	case strings.HasPrefix(path, "http"):
	case strings.HasPrefix(path, "/_sim"):
		url = "http://hexsim" + path
	default:
		url = base + path
	}
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := h.client.Do(req)
	if err != nil {
		return resp{}, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return resp{}, err
	}
	return resp{status: res.StatusCode, header: res.Header, body: data}, nil
}

// trigger runs RunProject on proj and returns the response and the run id ("" if none).
func (h *harness) trigger(token, proj string) (resp, string) {
	h.t.Helper()
	r := h.do("POST", "/projects/"+proj+"/runs", token, nil)
	var body struct{ RunID string }
	if r.status == http.StatusCreated {
		r.json(h.t, &body)
	}
	return r, body.RunID
}

func (h *harness) runStatus(token, proj, run string) string {
	h.t.Helper()
	r := h.do("GET", "/projects/"+proj+"/runs/"+run, token, nil)
	if r.status != http.StatusOK {
		h.t.Fatalf("GetRunStatus: %d %s", r.status, r.body)
	}
	var body struct{ Status string }
	r.json(h.t, &body)
	return body.Status
}

// sleepUntil advances the bubble's clock to t.
func sleepUntil(t time.Time) { time.Sleep(time.Until(t)) }

func statuses(rs []resp) []int {
	out := make([]int, len(rs))
	for i, r := range rs {
		out[i] = r.status
	}
	return out
}
