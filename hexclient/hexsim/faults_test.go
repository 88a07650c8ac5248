package hexsim

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestScriptedFaults applies each fault once and checks what the client saw, whether a
// run was created and what the ledger says.
func TestScriptedFaults(t *testing.T) {
	tests := []struct {
		fault     Fault
		status    int // 0: the client gets a transport error
		created   bool
		plainText bool
	}{
		{FaultNone, 201, true, false},
		{Fault5xxAfterCreate, 500, true, false},
		{Fault5xxBeforeCreate, 502, false, true},
		{FaultDrop, 0, true, false},
		{FaultConflict, 409, false, false},
		{FaultUnprocessable, 422, false, false},
		{FaultUnauthorized, 401, false, true},
		{FaultTooMany, 429, false, false},
		{FaultKernelCap, 503, false, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.fault), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, Config{Faults: Faults{Next: []Fault{tt.fault}}})
				r, err := h.try("POST", "/projects/"+proj1+"/runs", tokA, nil)
				switch {
				case tt.status == 0 && err == nil:
					t.Fatalf("got %d, want a dropped connection", r.status)
				case tt.status != 0 && err != nil:
					t.Fatal(err)
				case r.status != tt.status:
					t.Fatalf("status %d, want %d", r.status, tt.status)
				}
				if tt.plainText && !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
					t.Errorf("Content-Type %q, want text/plain", r.header.Get("Content-Type"))
				}
				if r.header != nil && r.header.Get("x-trace-id") == "" {
					t.Error("no x-trace-id header")
				}
				runs := h.sim.Runs()
				if (len(runs) == 1) != tt.created {
					t.Fatalf("%d runs, want created=%v", len(runs), tt.created)
				}
				rq := h.sim.Requests()[0]
				wantFault := string(tt.fault)
				if tt.fault == FaultNone {
					wantFault = ""
				}
				if rq.Fault != wantFault || rq.Status != tt.status || (rq.RunCreated != "") != tt.created {
					t.Fatalf("ledger %+v", rq)
				}
				if tt.created && rq.RunCreated != runs[0].ID {
					t.Fatalf("ledger run %s, sim run %s", rq.RunCreated, runs[0].ID)
				}
				// The script is used up: the next trigger is normal.
				if r, _ := h.trigger(tokA, proj2); r.status != 201 {
					t.Fatalf("after the script: %d", r.status)
				}
			})
		})
	}
}

// TestDelayFault: the run is created at once, the 201 comes Delay later on the clock,
// so a client with a shorter timeout gives up without knowing.
func TestDelayFault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{Faults: Faults{Next: []Fault{FaultDelay, FaultDelay}, Delay: 90 * time.Second}})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "POST", base+"/projects/"+proj1+"/runs", nil)
		req.Header.Set("Authorization", "Bearer "+tokA)
		_, err := h.client.Do(req)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("client with a 10 s timeout: %v, want a deadline error", err)
		}
		if len(h.sim.Runs()) != 1 {
			t.Fatal("the delayed request created no run")
		}
		// A patient client gets its 201 exactly Delay later.
		start := time.Now()
		r, id := h.trigger(tokA, proj1)
		if r.status != 201 || id == "" || time.Since(start) != 90*time.Second {
			t.Fatalf("patient client: %d after %v, want 201 after 90s", r.status, time.Since(start))
		}
		if got := h.sim.Requests()[1]; got.Fault != "delay" || got.Status != 201 {
			t.Fatalf("ledger: %+v", got)
		}
	})
}

// TestFaultAt: the n-th RunProject reaching the fault point gets the fault.
func TestFaultAt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{Faults: Faults{At: map[int]Fault{3: Fault5xxBeforeCreate}}})
		var got []int
		for range 5 {
			r, _ := h.trigger(tokA, proj1)
			got = append(got, r.status)
		}
		want := []int{201, 201, 502, 201, 201}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("statuses %v, want %v", got, want)
			}
		}
		if h.sim.FaultPoints() != 5 {
			t.Fatalf("FaultPoints %d", h.sim.FaultPoints())
		}
	})
}

// TestFaultProbabilities: faults drawn by probability follow the seed and the rates.
func TestFaultProbabilities(t *testing.T) {
	count := func(seed int64) (map[string]int, []string) {
		got := map[string]int{}
		var seq []string
		synctest.Test(t, func(t *testing.T) {
			h := newHarness(t, Config{Seed: seed, Limits: Limits{Trigger: []Rule{}, AllCalls: []Rule{}, Kernels: -1},
				Faults: Faults{Probabilities: map[Fault]float64{Fault5xxAfterCreate: 0.3, FaultDrop: 0.3}}})
			for range 500 {
				h.try("POST", "/projects/"+proj1+"/runs", tokA, nil)
			}
			for _, rq := range h.sim.Requests() {
				got[rq.Fault]++
				seq = append(seq, rq.Fault)
				if rq.RunCreated == "" {
					t.Errorf("request %+v created no run", rq)
				}
			}
		})
		return got, seq
	}
	a, seqA := count(3)
	_, seqB := count(3)
	if strings.Join(seqA, ",") != strings.Join(seqB, ",") {
		t.Fatalf("the same seed drew different faults: %d vs %d requests", len(seqA), len(seqB))
	}
	for _, f := range []string{"5xx-after-create", "drop-after-create", ""} {
		if a[f] < 110 || a[f] > 240 {
			t.Fatalf("fault counts over 500 triggers %v: %q far from its rate", a, f)
		}
	}
}

// TestConflict409: with Conflict409, a project with a run going answers 409.
func TestConflict409(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{Runs: Lifecycle{Conflict409: true, Pending: time.Second, Running: time.Minute}})
		if r, _ := h.trigger(tokA, proj1); r.status != 201 {
			t.Fatal(r.status)
		}
		if r, _ := h.trigger(tokA, proj1); r.status != 409 {
			t.Fatalf("second run while the first runs: %d, want 409", r.status)
		}
		if r, _ := h.trigger(tokA, proj2); r.status != 201 {
			t.Fatalf("another project: %d", r.status)
		}
		time.Sleep(2 * time.Minute)
		if r, _ := h.trigger(tokA, proj1); r.status != 201 {
			t.Fatalf("after the first run ended: %d", r.status)
		}
		if n := len(h.sim.Runs()); n != 3 {
			t.Fatalf("%d runs, want 3", n)
		}
	})
}

// TestUnprocessable: an unpublished project and, under the RejectUnknownInputs choice,
// unknown inputs answer 422 and create nothing; an unknown project in a registry
// answers 404.
func TestUnprocessable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{RejectUnknownInputs: true, Projects: []Project{
			{ID: proj1, Title: "Draft", Published: false},
			{ID: proj2, Title: "Report", Published: true, Inputs: []string{"region"}},
		}})
		r, _ := h.trigger(tokA, proj1)
		var eb struct{ Reason, TraceID string }
		r.json(t, &eb)
		if r.status != 422 || eb.Reason == "" || eb.TraceID != r.header.Get("x-trace-id") {
			t.Fatalf("unpublished: %d %s", r.status, r.body)
		}
		r = h.do("POST", "/projects/"+proj2+"/runs", tokA, map[string]any{"inputParams": map[string]any{"region": "emea", "colour": "red", "size": 2}})
		var ib struct {
			Invalid  []any
			NotFound []string
			TraceID  string
		}
		r.json(t, &ib)
		if r.status != 422 || ib.Invalid == nil || strings.Join(ib.NotFound, ",") != "colour,size" || ib.TraceID == "" {
			t.Fatalf("unknown inputs: %d %s", r.status, r.body)
		}
		if r := h.do("POST", "/projects/"+proj2+"/runs", tokA, map[string]any{"inputParams": map[string]any{"region": "emea"}}); r.status != 201 {
			t.Fatalf("known input: %d %s", r.status, r.body)
		}
		if r, _ := h.trigger(tokA, "2d9b5e4c-3f60-4b7c-9d8e-9f0a1b2c3d4e"); r.status != 404 {
			t.Fatalf("unknown project in a registry: %d", r.status)
		}
		if r := h.do("GET", "/projects/"+proj1+"/runs", tokA, nil); r.status != 422 {
			t.Fatalf("GetProjectRuns of an unpublished project: %d, want 422", r.status)
		}
		if n := len(h.sim.Runs()); n != 1 {
			t.Fatalf("%d runs, want 1", n)
		}
	})
}

// TestUnknownInputsIgnoredByDefault: Hex documents that "any additional inputs will be
// ignored": by default the sim runs the project and keeps the inputs as sent.
func TestUnknownInputsIgnoredByDefault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{Projects: []Project{{ID: proj2, Title: "Report", Published: true, Inputs: []string{"region"}}}})
		r := h.do("POST", "/projects/"+proj2+"/runs", tokA, map[string]any{"inputParams": map[string]any{"region": "emea", "regoin": "amer"}})
		if r.status != 201 {
			t.Fatalf("unknown input: %d %s, want 201", r.status, r.body)
		}
		runs := h.sim.Runs()
		if len(runs) != 1 || string(runs[0].InputParams["regoin"]) != `"amer"` || string(runs[0].InputParams["region"]) != `"emea"` {
			t.Fatalf("runs %+v", runs)
		}
	})
}

// TestFaultsEndpoint scripts faults over HTTP, as an end-to-end test of the standalone
// binary would.
func TestFaultsEndpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{})
		if r := h.do("POST", "/_sim/faults", "", `{"next":["5xx-before-create"],"at":{"3":"409"}}`); r.status != 204 {
			t.Fatalf("POST /_sim/faults: %d %s", r.status, r.body)
		}
		var got []int
		for range 3 {
			r, _ := h.trigger(tokA, proj1)
			got = append(got, r.status)
		}
		if got[0] != 502 || got[1] != 201 || got[2] != 409 {
			t.Fatalf("statuses %v, want 502 201 409", got)
		}
		for _, bad := range []string{`{"next":["explode"]}`, `{"probabilities":{"delay":2}}`, `{"nxt":[]}`, `{"at":{"x":"409"}}`} {
			if r := h.do("POST", "/_sim/faults", "", bad); r.status != 400 {
				t.Errorf("POST /_sim/faults %s: %d, want 400", bad, r.status)
			}
		}
		h.do("POST", "/_sim/faults", "", `{"clear":true,"probabilities":{"5xx-after-create":1}}`)
		if r, _ := h.trigger(tokA, proj1); r.status != 500 {
			t.Fatalf("with probability 1: %d", r.status)
		}
		h.do("POST", "/_sim/faults", "", `{"clear":true}`)
		if r, _ := h.trigger(tokA, proj1); r.status != 201 {
			t.Fatalf("after clear: %d", r.status)
		}
	})
}
