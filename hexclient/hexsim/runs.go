package hexsim

import (
	"encoding/json"
	"math/rand/v2"
	"sort"
	"time"
)

// Run statuses Hex documents.
const (
	StatusPending   = "PENDING"
	StatusRunning   = "RUNNING"
	StatusErrored   = "ERRORED"
	StatusCompleted = "COMPLETED"
	StatusKilled    = "KILLED"
	StatusNoKernel  = "UNABLE_TO_ALLOCATE_KERNEL"
)

// Run triggers Hex documents.
const (
	TriggerAPI        = "API"
	TriggerScheduled  = "SCHEDULED"
	TriggerAppRefresh = "APP_REFRESH"
)

// Run is a snapshot of one run as the sim sees it.
type Run struct {
	// ID is the run's UUID.
	ID string `json:"runId"`
	// ProjectID is the project's UUID.
	ProjectID string `json:"projectId"`
	// User is the Hex user whose token created it ("" for injected runs).
	User string `json:"user,omitempty"`
	// Trigger is API, SCHEDULED or APP_REFRESH.
	Trigger string `json:"runTrigger"`
	// Created is when the run was created (also its startTime).
	Created time.Time `json:"created"`
	// Status is the run's status at the instant of the snapshot.
	Status string `json:"status"`
	// StartTime is when the run started (Created).
	StartTime time.Time `json:"startTime"`
	// EndTime is when the run reached a terminal status (zero while not terminal).
	EndTime time.Time `json:"endTime,omitzero"`
	// Outcome is the outcome the run was drawn.
	Outcome Outcome `json:"outcome"`
	// Cancelled reports whether CancelRun killed it.
	Cancelled bool `json:"cancelled,omitempty"`
	// InputParams are the inputParams of the RunProject that created it, as sent.
	InputParams map[string]json.RawMessage `json:"inputParams,omitempty"`
}

// run is the sim's record of a run; its status is computed from the clock when read.
type run struct {
	id, project, user, trigger string
	created                    time.Time
	pending, running           time.Duration
	outcome                    Outcome
	cancelled                  time.Time // zero unless CancelRun killed it
	seq                        int       // creation order
	inputs                     map[string]json.RawMessage
	notes                      []notificationRecipient
}

// terminal reports whether status is one of Hex's terminal statuses.
func terminal(status string) bool {
	switch status {
	case StatusErrored, StatusCompleted, StatusKilled, StatusNoKernel:
		return true
	}
	return false
}

// state computes the run's status at now and, when terminal, when it ended.
func (r *run) state(now time.Time, unknown string) (status string, end time.Time) {
	if !r.cancelled.IsZero() && !now.Before(r.cancelled) {
		return StatusKilled, r.cancelled
	}
	pendEnd := r.created.Add(r.pending)
	if now.Before(pendEnd) {
		if r.outcome == OutcomeUnknown {
			return unknown, time.Time{}
		}
		return StatusPending, time.Time{}
	}
	switch r.outcome {
	case OutcomeNoKernel:
		return StatusNoKernel, pendEnd
	case OutcomeStuck:
		return StatusRunning, time.Time{}
	}
	runEnd := pendEnd.Add(r.running)
	if now.Before(runEnd) {
		return StatusRunning, time.Time{}
	}
	switch r.outcome {
	case OutcomeErrored:
		return StatusErrored, runEnd
	case OutcomeKilled:
		return StatusKilled, runEnd
	}
	return StatusCompleted, runEnd
}

func (r *run) snapshot(now time.Time, unknown string) Run {
	status, end := r.state(now, unknown)
	return Run{ID: r.id, ProjectID: r.project, User: r.user, Trigger: r.trigger, Created: r.created,
		Status: status, StartTime: r.created, EndTime: end, Outcome: r.outcome, Cancelled: !r.cancelled.IsZero(),
		InputParams: r.inputs}
}

// drawRun fills a new run's durations and outcome from rng.
func drawRun(rng *rand.Rand, lc Lifecycle) (pending, running time.Duration, outcome Outcome) {
	pending = lc.Pending + jitter(rng, lc.PendingJitter)
	running = lc.Running + jitter(rng, lc.RunningJitter)
	outcome = drawOutcome(rng, lc.Outcomes)
	return
}

func jitter(rng *rand.Rand, max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return time.Duration(rng.Int64N(int64(max)))
}

func drawOutcome(rng *rand.Rand, weights map[Outcome]float64) Outcome {
	keys := make([]Outcome, 0, len(weights))
	total := 0.0
	for o, w := range weights {
		if w > 0 {
			keys = append(keys, o)
			total += w
		}
	}
	if total == 0 {
		return OutcomeCompleted
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	u := rng.Float64() * total
	for _, o := range keys {
		u -= weights[o]
		if u < 0 {
			return o
		}
	}
	return keys[len(keys)-1]
}
