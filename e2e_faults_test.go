package main

// The fault matrix: one row per fault hexsim can inject, each run against the real
// `hexcron run` and a standalone `hexcron sim`, each asserting the outcome the trigger
// path's table (docs/trigger-protocol.md, docs/architecture.md) promises, from the sim's ledger
// and runs, the database and the daemon's log.
//
// The daemon has no flag for the Hex client's timings, so the rows live with its
// defaults: an ambiguous answer is resolved 10s later (VisibilityDelay), an attempt
// times out after 30s, a run is first polled 10s after its trigger.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"hexcron/hexclient"
	"hexcron/state"
)

// faultCase is one row's running world.
type faultCase struct {
	t         *testing.T
	sim       simProc
	d         *daemonProc
	db        string
	tokenFile string
	stop      time.Time // end of a row's own action (the second client's spending)
	started   time.Time // when the daemon was started
}

// logs returns the daemon's JSON records whose msg starts with prefix.
func (f *faultCase) logs(prefix string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(f.d.stderr.String(), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err == nil {
			if m, _ := rec["msg"].(string); strings.HasPrefix(m, prefix) {
				out = append(out, rec)
			}
		}
	}
	return out
}

// firstSlot is the slot named by the first record of msg prefix ("" if none).
func (f *faultCase) firstSlot(prefix string) string {
	recs := f.logs(prefix)
	if len(recs) == 0 {
		return ""
	}
	s, _ := recs[0]["slot"].(string)
	return s
}

// slots reads the database (none before the daemon has created it).
func (f *faultCase) slots() []state.Slot {
	db, err := state.Open(context.Background(), f.db, state.Options{ReadOnly: true})
	if err != nil {
		return nil
	}
	defer db.Close()
	slots, err := db.History(context.Background(), state.Filter{})
	if err != nil {
		f.t.Fatal(err)
	}
	return slots
}

func (f *faultCase) slot(key string) (state.Slot, bool) {
	for _, s := range f.slots() {
		if s.Key == key {
			return s, true
		}
	}
	return state.Slot{}, false
}

// posts returns the RunProject requests hexsim received, in arrival order.
func (f *faultCase) posts() []clRequest {
	var out []clRequest
	for _, r := range f.sim.ledger(f.t) {
		if r.Op == "RunProject" {
			out = append(out, r)
		}
	}
	return out
}

func logTime(rec map[string]any) time.Time {
	s, _ := rec["time"].(string)
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

// triggeredWithRun reports whether slot key records a run.
func (f *faultCase) triggeredWithRun(key string) bool {
	s, ok := f.slot(key)
	return ok && s.RunID != ""
}

// oneRunPerSlot checks that every run of the project belongs to exactly one slot. The
// daemon was just stopped, and a stop may interrupt a trigger before it learns its run
// (the slot stays triggering for the next start to reconcile): such a run is excused,
// exactly as unexplainedRuns says, and no other.
func (f *faultCase) oneRunPerSlot(project string) {
	t := f.t
	t.Helper()
	slots := slotsOf(t, f.db)
	byRun := map[string]string{}
	for _, s := range slots {
		if s.RunID == "" {
			continue
		}
		if other, dup := byRun[s.RunID]; dup {
			t.Errorf("run %s recorded for two slots: %s and %s", s.RunID, other, s.Key)
		}
		byRun[s.RunID] = s.Key
	}
	var runs []simRun
	for _, r := range f.sim.runs(t) {
		if r.ProjectID == project {
			runs = append(runs, r)
		}
	}
	unexplained, _ := unexplainedRuns(slots, runs, map[string]string{"row": fmProject})
	for _, r := range unexplained {
		t.Errorf("hexsim has run %s (started %s) that no slot records and no trigger interrupted by the stop explains: a double trigger",
			r.ID, r.StartTime.Format("15:04:05.000"))
	}
}

// noSlotLost checks that no slot due after the daemon started ended skipped or failed
// (rows whose fault does not cost a slot).
func (f *faultCase) noSlotLost() {
	f.t.Helper()
	for _, s := range f.slots() {
		if s.Nominal.Before(f.started) {
			continue // a slot from before the start, whose window was closing
		}
		if s.State == state.StateSkipped || s.State == state.StateFailed {
			f.t.Errorf("slot %s lost: %s (%s)", s.Key, s.State, s.Reason)
		}
	}
}

const (
	fmProject = "f0f0f0f0-1111-4222-8333-444455556666"
	fmOther   = "f0f0f0f0-1111-4222-8333-777788889999"
	fmToken   = "hxtp_faultmatrix"
)

// fmSim is the sim config of a row: generous read limits, short runs, plus extra.
func fmSim(extra string) string {
	return `limits:
  trigger: [{limit: 20, per: 10s}, {limit: 60, per: 1m}]
  window: rolling
  status: [{limit: 6000, per: 1m}]
  all_calls: [{limit: 6000, per: 1m}]
` + extra
}

const fmRuns = `runs:
  pending: 100ms
  running: 300ms
`

// ambiguousThenAdopted checks a row whose fault created the run but hid the answer:
// the slot adopts exactly the run the faulted POST created, after listing the runs no
// sooner than the visibility delay, and nothing is POSTed again for it.
func ambiguousThenAdopted(f *faultCase, fault string) {
	t := f.t
	key := f.firstSlot("RunProject outcome is ambiguous")
	s, _ := f.slot(key)
	posts := f.posts()
	var faulted clRequest
	for _, p := range posts {
		if p.Fault == fault {
			faulted = p
			break
		}
	}
	if faulted.RunCreated == "" {
		t.Fatalf("hexsim ledger has no %s RunProject that created a run: %+v", fault, posts)
	}
	if s.RunID != faulted.RunCreated {
		t.Errorf("slot %s records run %q, want the run the faulted POST created (%s)", key, s.RunID, faulted.RunCreated)
	}
	if s.Attempts != 1 {
		t.Errorf("slot %s: %d attempts, want 1 (adopted, never POSTed again)", key, s.Attempts)
	}
	adopted := false
	for _, r := range f.logs("adopted after reconcile") {
		adopted = adopted || r["slot"] == key
	}
	if !adopted {
		t.Errorf("no 'adopted after reconcile' line for slot %s", key)
	}
	// The listing that found it came after the visibility delay.
	var listed bool
	for _, r := range f.sim.ledger(t) {
		if r.Op == "GetProjectRuns" && !r.Time.Before(faulted.Time.Add(10*time.Second)) {
			listed = true
			break
		}
	}
	if !listed {
		t.Errorf("no GetProjectRuns at least 10s (the visibility delay) after the faulted POST at %s", faulted.Time.Format("15:04:05.000"))
	}
	f.oneRunPerSlot(fmProject)
}

// ambiguousThenRePOSTed checks a row whose fault created no run: the slot lists the
// runs after the visibility delay, finds none and POSTs once more.
func ambiguousThenRePOSTed(f *faultCase, status int) {
	t := f.t
	var key string
	for _, r := range f.logs("RunProject outcome is ambiguous") {
		if r["status"] == float64(status) {
			key, _ = r["slot"].(string)
			break
		}
	}
	if key == "" {
		t.Fatalf("no ambiguous-outcome WARN with status %d", status)
	}
	s, _ := f.slot(key)
	if s.Attempts != 2 || s.RunID == "" {
		t.Errorf("slot %s: %d attempts, run %q; want 2 attempts (the fault, one re-POST) and a run", key, s.Attempts, s.RunID)
	}
	posts := f.posts()
	var faulted, after *clRequest
	for i := range posts {
		if faulted == nil && posts[i].Status == status {
			faulted = &posts[i]
		} else if faulted != nil && posts[i].RunCreated == s.RunID {
			after = &posts[i]
		}
	}
	switch {
	case faulted == nil || after == nil:
		t.Errorf("want a %d POST then the POST that created %s: %+v", status, s.RunID, posts)
	case faulted.RunCreated != "":
		t.Errorf("the %d POST created run %s", status, faulted.RunCreated)
	case after.Time.Before(faulted.Time.Add(10 * time.Second)):
		t.Errorf("re-POSTed %v after the %d, before the 10s visibility delay", after.Time.Sub(faulted.Time), status)
	}
	if faulted != nil && after != nil {
		listed := false
		for _, r := range f.sim.ledger(t) {
			listed = listed || (r.Op == "GetProjectRuns" && r.Time.After(faulted.Time) && r.Time.Before(after.Time))
		}
		if !listed {
			t.Errorf("re-POSTed without listing the project's runs in between")
		}
	}
	if len(f.logs("no run appeared after the ambiguous attempt")) == 0 {
		t.Error("no 'no run appeared after the ambiguous attempt; trying again' line")
	}
	f.oneRunPerSlot(fmProject)
}

// rateLimited checks a 429 row: the slot waits at least until the named instant
// (minWait after the 429 arrived), then one run.
func rateLimited(f *faultCase, minWait time.Duration) {
	t := f.t
	key := f.firstSlot("rate limited; waiting")
	if key == "" {
		t.Fatal("no 'rate limited; waiting' line")
	}
	s, _ := f.slot(key)
	if s.RunID == "" || s.Attempts != 2 {
		t.Errorf("slot %s: %d attempts, run %q; want 2 and a run", key, s.Attempts, s.RunID)
	}
	posts := f.posts()
	var first429 *clRequest
	for i := range posts {
		if posts[i].Status == http.StatusTooManyRequests {
			first429 = &posts[i]
			break
		}
	}
	if first429 == nil {
		t.Fatal("hexsim answered no 429")
	}
	for _, p := range posts {
		if p.Time.After(first429.Time) && p.Time.Before(first429.Time.Add(minWait)) {
			t.Errorf("RunProject %v after the 429, before the named instant (+%v): all triggers must wait", p.Time.Sub(first429.Time), minWait)
		}
	}
	f.oneRunPerSlot(fmProject)
	f.noSlotLost()
}

// faultRow is one row of the fault matrix.
type faultRow struct {
	name      string
	sim       string        // sim YAML
	budget    string        // budget.triggers YAML list (default 20/10s, 60/1m)
	cron      string        // default "*/15 * * * * *"
	window    string        // default 14s: shorter than the interval (no burst of past slots at start)
	timeout   string        // default 1m
	tokenFile bool          // the token comes from hex.token_file, not $HEX_API_TOKEN
	limit     time.Duration // bound of the wait (default 60s)
	during    func(f *faultCase)
	until     func(f *faultCase) bool
	check     func(f *faultCase)
}

// The ambiguous rows fault the second POST, a slot fired at its nominal instant (the
// first may be a slot from before the start, whose window is nearly over), and give it
// a window long enough for the 10s visibility delay and a re-POST.
const (
	ambCron   = "*/20 * * * * *"
	ambWindow = "19s"
	ambLimit  = 80 * time.Second
)

func TestE2EFaultMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	rows := []faultRow{
		{name: "5xx-after-create", sim: fmSim(fmRuns + "faults: {at: {2: 5xx-after-create}}\n"), cron: ambCron, window: ambWindow, limit: ambLimit,
			until: func(f *faultCase) bool { return len(f.logs("adopted after reconcile")) > 0 },
			check: func(f *faultCase) { ambiguousThenAdopted(f, "5xx-after-create") }},
		{name: "5xx-before-create", sim: fmSim(fmRuns + "faults: {at: {2: 5xx-before-create}}\n"), cron: ambCron, window: ambWindow, limit: ambLimit,
			until: func(f *faultCase) bool {
				k := f.firstSlot("RunProject outcome is ambiguous")
				return k != "" && f.triggeredWithRun(k)
			},
			check: func(f *faultCase) { ambiguousThenRePOSTed(f, http.StatusBadGateway) }},
		{name: "slow-response-past-timeout", sim: fmSim(fmRuns + "faults: {at: {1: delay}, delay: 45s}\n"),
			cron: "0 * * * * *", window: "50s", limit: 90 * time.Second,
			until: func(f *faultCase) bool { return len(f.logs("adopted after reconcile")) > 0 },
			check: func(f *faultCase) {
				ambiguousThenAdopted(f, "delay")
				// The attempt was given up at the client's 30s timeout, not at the answer.
				recs := f.logs("RunProject outcome is ambiguous")
				if len(recs) == 0 || !strings.Contains(fmt.Sprint(recs[0]["err"]), "deadline") && !strings.Contains(fmt.Sprint(recs[0]["err"]), "timeout") {
					f.t.Errorf("ambiguous WARN does not name the timeout: %v", recs)
				}
			}},
		{name: "drop-after-create", sim: fmSim(fmRuns + "faults: {at: {2: drop-after-create}}\n"), cron: ambCron, window: ambWindow, limit: ambLimit,
			until: func(f *faultCase) bool { return len(f.logs("adopted after reconcile")) > 0 },
			check: func(f *faultCase) { ambiguousThenAdopted(f, "drop-after-create") }},
		{name: "429-retry-after", sim: strings.Replace(fmSim(fmRuns+"faults: {at: {2: 429}, retry_after: 3s}\n"), "window: rolling", "window: rolling\n  style: retry-after", 1),
			until: func(f *faultCase) bool {
				k := f.firstSlot("rate limited; waiting")
				return k != "" && f.triggeredWithRun(k)
			},
			check: func(f *faultCase) { rateLimited(f, 3*time.Second) }},
		{name: "429-reset-headers", sim: strings.Replace(fmSim(fmRuns+"faults: {at: {2: 429}, retry_after: 3s}\n"), "window: rolling", "window: rolling\n  style: reset", 1),
			until: func(f *faultCase) bool {
				k := f.firstSlot("rate limited; waiting")
				return k != "" && f.triggeredWithRun(k)
			},
			check: func(f *faultCase) { rateLimited(f, 3*time.Second) }},
		{name: "429-no-headers", sim: strings.Replace(fmSim(fmRuns+"faults: {at: {2: 429}, retry_after: 3s}\n"), "window: rolling", "window: rolling\n  style: none", 1),
			until: func(f *faultCase) bool {
				k := f.firstSlot("rate limited; waiting")
				return k != "" && f.triggeredWithRun(k)
			},
			check: func(f *faultCase) {
				rec := f.logs("rate limited; waiting")[0]
				// Nothing named: a jittered backoff in [0, 5s] (RateLimitBackoff's base).
				if w, _ := rec["wait"].(float64); w > float64(5*time.Second) {
					f.t.Errorf("wait %v after a 429 without headers, want at most the 5s backoff base", time.Duration(w))
				}
				rateLimited(f, 0)
			}},
		{name: "429-second-client-sharing-the-user",
			sim: `users: [{name: team, tokens: [` + fmToken + `, hxtp_other_client]}]
limits:
  trigger: [{limit: 10, per: 10s}]
  window: rolling
  style: both
  status: [{limit: 6000, per: 1m}]
  all_calls: [{limit: 6000, per: 1m}]
` + fmRuns,
			budget: "    - {limit: 10, per: 10s}\n", cron: "*/5 * * * * *", window: "30s", limit: 90 * time.Second,
			during: func(f *faultCase) {
				waitFor(f.t, 20*time.Second, "a first trigger", func() bool { return len(f.logs("triggered")) > 0 })
				// The other client spends the user's budget for 12s, as fast as hexsim lets it.
				stop := time.Now().Add(12 * time.Second)
				for time.Now().Before(stop) {
					req, _ := http.NewRequest(http.MethodPost, f.sim.base+"/projects/"+fmOther+"/runs", nil)
					req.Header.Set("Authorization", "Bearer hxtp_other_client")
					if resp, err := http.DefaultClient.Do(req); err == nil {
						resp.Body.Close()
					}
					time.Sleep(100 * time.Millisecond) // pacing of the other client, not an assertion
				}
				f.stop = stop
			},
			until: func(f *faultCase) bool {
				stop := f.stop
				// Every slot up to the contention's end plus a window has settled.
				for _, s := range f.slots() {
					if s.Nominal.Before(stop.Add(2*time.Second)) && (s.State == state.StatePlanned || s.State == state.StateTriggering) {
						return false
					}
				}
				return time.Now().After(stop.Add(32 * time.Second))
			},
			check: func(f *faultCase) {
				warns := f.logs(hexclient.MsgTrigger429)
				if len(warns) != 1 {
					f.t.Errorf("%d WARNs about another client, want exactly 1 for the episode", len(warns))
				}
				daemon429 := 0
				for _, r := range f.sim.ledger(f.t) {
					if r.Op == "RunProject" && r.Status == 429 && strings.Contains(r.Path, fmProject) {
						daemon429++
					}
				}
				if daemon429 == 0 {
					f.t.Error("the daemon got no 429: the other client did not contend")
				}
				f.t.Logf("daemon 429s: %d", daemon429)
				f.oneRunPerSlot(fmProject)
				f.noSlotLost()
			}},
		{name: "503-kernel-cap",
			// One kernel and 8s runs: at the first start the past slots whose windows are
			// open fire together; one gets the kernel, the others the 503.
			sim: fmSim(`  kernels: 1
runs:
  pending: 100ms
  running: 8s
`), cron: "*/5 * * * * *", window: "30s",
			until: func(f *faultCase) bool {
				// A hold, then a trigger after it (once a run ended or the backoff passed).
				// Which waiting slot wins is not ordered: older ones may lose their window.
				caps := f.logs("Hex is at its running-kernel cap")
				if len(caps) == 0 {
					return false
				}
				for _, r := range f.logs("triggered") {
					if logTime(r).After(logTime(caps[0]).Add(time.Second)) {
						return true
					}
				}
				return false
			},
			check: func(f *faultCase) {
				runs := f.sim.runs(f.t)
				posts := f.posts()
				n503 := 0
				for _, p := range posts {
					if p.Status != http.StatusServiceUnavailable {
						continue
					}
					n503++
					// Held: apart from attempts already on their way (within 1s), the next
					// POST comes no sooner than a run going at the 503 ended (the daemon
					// sees it end), or the kernel backoff (15s at least).
					free := p.Time.Add(15 * time.Second)
					for _, r := range runs {
						if r.StartTime.Before(p.Time) && !r.EndTime.IsZero() && r.EndTime.After(p.Time) && r.EndTime.Before(free) {
							free = r.EndTime
						}
					}
					for _, q := range posts {
						if q.Time.After(p.Time.Add(time.Second)) && q.Time.Before(free) {
							f.t.Errorf("POST %v after a 503, before any run ended (%v) or the backoff: not held",
								q.Time.Sub(p.Time), free.Sub(p.Time))
						}
					}
				}
				if n503 == 0 {
					f.t.Error("hexsim answered no 503")
				}
				f.oneRunPerSlot(fmProject)
			}},
		{name: "401-rotation-token-file", sim: fmSim(fmRuns), tokenFile: true, limit: 90 * time.Second,
			during: func(f *faultCase) {
				waitFor(f.t, 20*time.Second, "a first trigger", func() bool { return len(f.logs("triggered")) > 0 })
				f.stop = time.Now()
				f.sim.post(f.t, "/_sim/rotate", `{"old": "`+fmToken+`", "new": "hxtp_rotated"}`)
				waitFor(f.t, 20*time.Second, "the ERROR about the token", func() bool { return len(f.logs("Hex refused the API token")) > 0 })
				if err := os.WriteFile(f.tokenFile, []byte("hxtp_rotated\n"), 0o600); err != nil {
					f.t.Fatal(err)
				}
			},
			until: func(f *faultCase) bool {
				if len(f.logs("a read with the current token succeeded; triggering resumes")) == 0 {
					return false
				}
				// A slot due after the rotation has its run.
				for _, s := range f.slots() {
					if s.Nominal.After(f.stop) && s.RunID != "" {
						return true
					}
				}
				return false
			},
			check: func(f *faultCase) {
				if n := len(f.logs("Hex refused the API token")); n != 1 {
					f.t.Errorf("%d ERROR lines about the token, want 1", n)
				}
				n401 := 0
				for _, p := range f.posts() {
					if p.Status == http.StatusUnauthorized {
						n401++
					}
				}
				// The ERROR may come from a status poll's 401 before any trigger: then no
				// RunProject is spent on the refused token at all.
				if n401 > 1 {
					f.t.Errorf("%d RunProject answered 401; want at most 1 (triggering pauses after the first)", n401)
				}
				for _, r := range f.sim.ledger(f.t) {
					if r.Op == "RunProject" && r.Status == http.StatusCreated && r.Time.After(f.stop) {
						if recs := f.logs("a read with the current token succeeded"); r.Time.Before(logTime(recs[0])) {
							f.t.Errorf("a trigger succeeded at %s, before the daemon logged that it resumed", r.Time)
						}
						break
					}
				}
				f.oneRunPerSlot(fmProject)
				f.noSlotLost()
			}},
		{name: "409", sim: fmSim(fmRuns + "faults: {at: {2: \"409\"}}\n"), cron: ambCron, window: ambWindow, limit: ambLimit,
			until: func(f *faultCase) bool {
				k := f.firstSlot("RunProject outcome is ambiguous")
				return k != "" && f.triggeredWithRun(k)
			},
			check: func(f *faultCase) { ambiguousThenRePOSTed(f, http.StatusConflict) }},
		{name: "422", sim: fmSim(fmRuns + "faults: {at: {1: \"422\"}}\n"),
			until: func(f *faultCase) bool {
				for _, s := range f.slots() {
					if s.State == state.StateFailed {
						return true
					}
				}
				return false
			},
			check: func(f *faultCase) {
				var failed state.Slot
				for _, s := range f.slots() {
					if s.State == state.StateFailed {
						failed = s
					}
				}
				var p422 clRequest
				for _, p := range f.posts() {
					if p.Status == http.StatusUnprocessableEntity {
						p422 = p
					}
				}
				if !strings.Contains(failed.Reason, "Project has not been published") || !strings.Contains(failed.Reason, "422") {
					f.t.Errorf("failed slot %s reason %q, want Hex's 422 reason", failed.Key, failed.Reason)
				}
				if failed.TraceID == "" || failed.TraceID != p422.TraceID {
					f.t.Errorf("failed slot trace id %q, want the 422's %q", failed.TraceID, p422.TraceID)
				}
				if failed.Attempts != 1 {
					f.t.Errorf("failed slot: %d attempts, want 1 (no retry)", failed.Attempts)
				}
				f.oneRunPerSlot(fmProject)
			}},
		{name: "stuck-in-running", sim: fmSim("runs:\n  pending: 100ms\n  outcomes: {STUCK: 1}\n"),
			cron: "*/10 * * * * *", window: "9s", timeout: "3s",
			until: func(f *faultCase) bool { return len(f.logs("timed_out")) > 0 },
			check: func(f *faultCase) {
				key := f.firstSlot("timed_out")
				s, _ := f.slot(key)
				if s.State != state.StateTimedOut || !strings.Contains(s.Reason, "timeout 3s") {
					f.t.Errorf("slot %s: %s %q, want timed_out naming the timeout", key, s.State, s.Reason)
				}
				deleted := false
				for _, r := range f.sim.ledger(f.t) {
					deleted = deleted || (r.Method == http.MethodDelete && strings.HasSuffix(r.Path, s.RunID) && r.Status == http.StatusNoContent)
				}
				if !deleted {
					f.t.Errorf("hexsim saw no DELETE of run %s answered 204", s.RunID)
				}
				for _, r := range f.sim.runs(f.t) {
					if r.ID == s.RunID && (r.Status != "KILLED" || !r.Cancelled) {
						f.t.Errorf("run %s: %s cancelled=%v, want KILLED by the cancel", r.ID, r.Status, r.Cancelled)
					}
				}
			}},
		{name: "unknown-status", sim: fmSim("runs:\n  pending: 12s\n  running: 1s\n  outcomes: {UNKNOWN: 1}\n  unknown_status: QUEUED_FOR_GPU\n"),
			limit: 75 * time.Second,
			until: func(f *faultCase) bool { return len(f.logs("completed")) > 0 },
			check: func(f *faultCase) {
				warns := f.logs("unknown run status; treated as not finished")
				if len(warns) == 0 || warns[0]["status"] != "QUEUED_FOR_GPU" {
					f.t.Fatalf("no WARN naming the unknown status QUEUED_FOR_GPU: %v", warns)
				}
				done := f.logs("completed")[0]
				key, _ := done["slot"].(string)
				s, _ := f.slot(key)
				for _, r := range f.sim.runs(f.t) {
					if r.ID != s.RunID {
						continue
					}
					// Not completed before Hex showed a known terminal status.
					if logTime(done).Before(r.EndTime) {
						f.t.Errorf("slot %s recorded completed at %s, before the run ended at %s", key, logTime(done), r.EndTime)
					}
				}
				unknownSlots := map[any]bool{}
				for _, w := range warns {
					unknownSlots[w["slot"]] = true
				}
				if !unknownSlots[key] {
					f.t.Errorf("the completed slot %s never showed the unknown status (warned for %v)", key, unknownSlots)
				}
			}},
	}
	// Every row at once, whatever -parallel says: each waits on real time (visibility
	// delays, timeouts), not on the CPU.
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, r := range rows {
		wg.Add(1)
		go func() { defer wg.Done(); t.Run(r.name, func(t *testing.T) { runFaultRow(t, r) }) }()
	}
}

func runFaultRow(t *testing.T, r faultRow) {
	simYAML := r.sim
	if !strings.Contains(simYAML, "users:") {
		simYAML = "tokens: [" + fmToken + "]\n" + simYAML
	}
	sim := startSimProc(t, simYAML)
	dir := t.TempDir()
	f := &faultCase{t: t, sim: sim, db: filepath.Join(dir, "hexcron.db")}
	hexExtra, env := "", cleanEnv("HEX_API_TOKEN="+fmToken)
	if r.tokenFile {
		f.tokenFile = filepath.Join(dir, "hex-token")
		if err := os.WriteFile(f.tokenFile, []byte(fmToken+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		hexExtra, env = "\n  token_file: "+f.tokenFile, cleanEnv()
	}
	budget := r.budget
	if budget == "" {
		budget = "    - {limit: 20, per: 10s}\n    - {limit: 60, per: 1m}\n"
	}
	or := func(v, d string) string {
		if v == "" {
			return d
		}
		return v
	}
	cfg := filepath.Join(dir, "schedules.yaml")
	conf := fmt.Sprintf("hex:\n  base_url: %s%s\nbudget:\n  triggers:\n%s  reads:\n    - {limit: 600, per: 1m}\n"+
		"defaults:\n  overlap: allow\nschedules:\n  - {name: row, project: %s, cron: %q, window: %s, timeout: %s}\n",
		sim.base, hexExtra, budget, fmProject, or(r.cron, "*/15 * * * * *"), or(r.window, "14s"), or(r.timeout, "1m"))
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	f.started = time.Now()
	f.d = startFaultDaemon(t, env, "--config", cfg, "--db", f.db)
	if r.during != nil {
		r.during(f)
	}
	limit := r.limit
	if limit == 0 {
		limit = 60 * time.Second
	}
	waitFor(t, limit, "the row's outcome", func() bool { return r.until(f) })
	if code := f.d.stop(t); code != 0 {
		t.Errorf("exit code after SIGTERM = %d", code)
	}
	r.check(f)
	if t.Failed() {
		t.Logf("sim ledger: %+v", f.posts())
	}
}

// startFaultDaemon is startDaemon with exactly env (nothing inherited that names a
// token, so that the token_file row reads its file).
func startFaultDaemon(t *testing.T, env []string, args ...string) *daemonProc {
	t.Helper()
	cmd := exec.Command(binPath, append([]string{"run", "--log-format", "json", "--log-level", "debug"}, args...)...)
	cmd.Env = env
	return launchDaemon(t, cmd)
}
