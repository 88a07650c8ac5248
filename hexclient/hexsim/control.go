package hexsim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Requests returns a copy of the ledger: every API request received, in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Runs returns every run, oldest first, with its status as of the clock's now.
func (s *Server) Runs() []Run {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Clock.Now()
	out := make([]Run, 0, len(s.runs))
	for _, r := range s.runs {
		out = append(out, r.snapshot(now, s.cfg.Runs.UnknownStatus))
	}
	return out
}

// Run returns one run by id, with its status as of the clock's now.
func (s *Server) Run(id string) (Run, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.byID[strings.ToLower(id)]
	if r == nil {
		return Run{}, false
	}
	return r.snapshot(s.cfg.Clock.Now(), s.cfg.Runs.UnknownStatus), true
}

// RotateToken makes newToken act as the same user as oldToken and revokes oldToken
// (it then gets 401), as Hex's "regenerate" does. If oldToken was not valid, newToken
// becomes a valid token of its own user.
func (s *Server) RotateToken(oldToken, newToken string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	user, ok := s.authenticateLocked(oldToken)
	if !ok {
		user = "user-" + strings.TrimPrefix(hashToken(newToken), "sha256:")
	}
	delete(s.tokens, oldToken)
	if oldToken != "" && oldToken != newToken {
		s.revoked[oldToken] = true
	}
	delete(s.revoked, newToken)
	s.tokens[newToken] = user
}

// ScriptFaults appends faults to the script: each RunProject that reaches the fault
// point takes the next one (FaultNone behaves normally).
func (s *Server) ScriptFaults(faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.next = append(s.faults.next, faults...)
}

// ScriptFaultAt applies f to the n-th RunProject (1-based, counted since New) that
// reaches the fault point.
func (s *Server) ScriptFaultAt(n int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.at[n] = f
}

// SetFaultProbabilities replaces the fault probabilities (nil or empty: none).
func (s *Server) SetFaultProbabilities(p map[Fault]float64) error {
	cfg := Config{Faults: Faults{Probabilities: p}}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("set fault probabilities: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.probs = map[Fault]float64{}
	for f, v := range p {
		s.faults.probs[f] = v
	}
	return nil
}

// ClearFaults drops every scripted fault and probability.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.next, s.faults.at, s.faults.probs = nil, map[int]Fault{}, map[Fault]float64{}
}

// FaultPoints returns how many RunProject requests have reached the fault point.
func (s *Server) FaultPoints() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults.n
}

// SetProject adds or replaces a registry entry (e.g. to unpublish a project).
func (s *Server) SetProject(p Project) error {
	if !wellFormedUUID(p.ID) {
		return fmt.Errorf("set project: id %q is not a UUID", p.ID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setProjectLocked(p)
	return nil
}

// AddRun creates a run now as if Hex had started it by trigger (SCHEDULED,
// APP_REFRESH or API) outside any token: it goes through no limit and no fault, is not
// in the request ledger and holds no user's kernel.
func (s *Server) AddRun(projectID, trigger string) (Run, error) {
	switch trigger {
	case TriggerAPI, TriggerScheduled, TriggerAppRefresh:
	default:
		return Run{}, fmt.Errorf("add run: trigger %q is not API, SCHEDULED or APP_REFRESH", trigger)
	}
	pid := strings.ToLower(projectID)
	if !wellFormedUUID(pid) {
		return Run{}, fmt.Errorf("add run: project id %q is not a UUID", projectID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lookupProjectLocked(pid) == nil {
		return Run{}, fmt.Errorf("add run: no project %s", pid)
	}
	now := s.cfg.Clock.Now()
	return s.createRunLocked(pid, "", trigger, now).snapshot(now, s.cfg.Runs.UnknownStatus), nil
}

// debugRoutes serves /_sim: a test tool's back door, with no authentication.
//
//	GET  /_sim/requests   the request ledger (JSON array of Request)
//	GET  /_sim/runs       every run (JSON array of Run)
//	POST /_sim/rotate     {"old": TOKEN, "new": TOKEN}            -> 204
//	POST /_sim/faults     {"clear": bool, "next": [FAULT...], "at": {"N": FAULT},
//	                       "probabilities": {FAULT: P}}             -> 204
//	POST /_sim/runs       {"projectId": ID, "runTrigger": TRIGGER}  -> 201 Run
func (s *Server) debugRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /_sim/requests", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.Requests()) })
	mux.HandleFunc("GET /_sim/runs", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.Runs()) })
	mux.HandleFunc("POST /_sim/rotate", func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Old, New string }
		if err := decodeStrict(r.Body, &body); err != nil || !wellFormedToken(body.New) {
			http.Error(w, "want {\"old\": TOKEN, \"new\": hxtp_... or hxtw_...}", http.StatusBadRequest)
			return
		}
		s.RotateToken(body.Old, body.New)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Clear         bool              `json:"clear"`
			Next          []Fault           `json:"next"`
			At            map[string]Fault  `json:"at"`
			Probabilities map[Fault]float64 `json:"probabilities"`
		}
		if err := decodeStrict(r.Body, &body); err != nil {
			http.Error(w, "bad faults body: "+err.Error(), http.StatusBadRequest)
			return
		}
		at := map[int]Fault{}
		for k, f := range body.At {
			n, err := strconv.Atoi(k)
			if err != nil {
				http.Error(w, "bad faults body: at key "+strconv.Quote(k)+" is not a number", http.StatusBadRequest)
				return
			}
			at[n] = f
		}
		if err := (Config{Faults: Faults{Next: body.Next, At: at, Probabilities: body.Probabilities}}).Validate(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if body.Clear {
			s.ClearFaults()
		}
		s.ScriptFaults(body.Next...)
		for n, f := range at {
			s.ScriptFaultAt(n, f)
		}
		if body.Probabilities != nil {
			s.SetFaultProbabilities(body.Probabilities) // validated above
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /_sim/runs", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			ProjectID  string `json:"projectId"`
			RunTrigger string `json:"runTrigger"`
		}
		if err := decodeStrict(r.Body, &body); err != nil {
			http.Error(w, "bad run body: "+err.Error(), http.StatusBadRequest)
			return
		}
		run, err := s.AddRun(body.ProjectID, body.RunTrigger)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, http.StatusCreated, run)
	})
}

func decodeStrict(r io.Reader, v any) error {
	dec := json.NewDecoder(io.LimitReader(r, 1<<20))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
