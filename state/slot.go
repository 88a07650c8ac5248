package state

import (
	"fmt"
	"time"
)

// State is where a slot is in its life. See docs/state.md for the meaning of each.
type State string

// The slot states. planned, triggering, triggered and running are live; every other
// state is terminal and carries a reason when hexcron (not Hex) decided it.
const (
	StatePlanned          State = "planned"            // in the plan, not yet fired
	StateTriggering       State = "triggering"         // a RunProject attempt was admitted; outcome not yet recorded
	StateTriggered        State = "triggered"          // Hex accepted (201, or the run was adopted): run id known
	StateRunning          State = "running"            // Hex reports the run RUNNING
	StateCompleted        State = "completed"          // Hex: COMPLETED
	StateErrored          State = "errored"            // Hex: ERRORED
	StateKilled           State = "killed"             // Hex: KILLED (cancelled by someone)
	StateTimedOut         State = "timed_out"          // hexcron cancelled it after the schedule's timeout
	StateUnableToAllocate State = "unable_to_allocate" // Hex: UNABLE_TO_ALLOCATE_KERNEL
	StateUnknown          State = "unknown"            // hexcron cannot tell what happened (reason says why)
	StateSkipped          State = "skipped"            // never triggered on purpose (overlap, no room in window, downtime, ...)
	StateFailed           State = "failed"             // Hex refused the trigger permanently (400/404/422) or retries ran out
)

// States lists every state, live ones first.
var States = []State{
	StatePlanned, StateTriggering, StateTriggered, StateRunning,
	StateCompleted, StateErrored, StateKilled, StateTimedOut, StateUnableToAllocate,
	StateUnknown, StateSkipped, StateFailed,
}

// runEnds are the states a run that Hex accepted can end in.
var runEnds = []State{StateCompleted, StateErrored, StateKilled, StateTimedOut, StateUnableToAllocate, StateUnknown}

// transitions is the whole table of legal state changes (from -> allowed tos).
// Terminal states have no entry. Self-transitions of live states past planned are
// allowed so that fields (attempts, started time, url) can be refreshed.
var transitions = map[State][]State{
	StatePlanned:    {StateTriggering, StateSkipped, StateFailed},
	StateTriggering: append([]State{StateTriggering, StateTriggered, StateRunning, StateSkipped, StateFailed}, runEnds...),
	StateTriggered:  append([]State{StateTriggered, StateRunning}, runEnds...),
	StateRunning:    append([]State{StateRunning}, runEnds...),
}

// CanTransition reports whether a slot in state from may move to state to.
func CanTransition(from, to State) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Terminal reports whether s is a final state (no transition leaves it).
func (s State) Terminal() bool { _, live := transitions[s]; return !live && s.Valid() }

// Valid reports whether s is one of States.
func (s State) Valid() bool {
	for _, v := range States {
		if v == s {
			return true
		}
	}
	return false
}

// String returns the state's name as stored.
func (s State) String() string { return string(s) }

// Kind says why a slot exists.
type Kind string

// The slot kinds.
const (
	KindScheduled Kind = "scheduled" // a firing of the cron spec
	KindCatchup   Kind = "catchup"   // a missed firing replayed after downtime
	KindManual    Kind = "manual"    // `hexcron trigger`, or a gateway request (Client set)
)

// Slot is one row of the slots table. Zero times mean "not yet".
type Slot struct {
	Key         string            // planner's key, e.g. regional-report@2026-11-30T11:30:00Z[region=emea]
	Schedule    string            // schedule name
	Nominal     time.Time         // the cron instant (now, for manual runs)
	Matrix      map[string]string // matrix values; nil for plain schedules
	Kind        Kind              // scheduled, catchup or manual
	Planned     time.Time         // when the plan fires it
	State       State             // see State
	Reason      string            // why it is in State (set for skipped, failed, unknown, ...)
	RunID       string            // Hex run id, once known
	RunURL      string            // Hex run url
	TraceID     string            // Hex trace id of the trigger (or of the refusal)
	Attempts    int               // RunProject attempts admitted for this slot
	LastAttempt time.Time         // when the latest attempt was admitted
	LastError   string            // the latest error met while triggering or polling
	Triggered   time.Time         // when Hex accepted the trigger (or the run was adopted)
	Started     time.Time         // run start as Hex reports it
	Ended       time.Time         // run end as Hex reports it (or when hexcron settled it)
	Elapsed     time.Duration     // run duration as Hex reports it
	Project     string            // Hex project id the slot is triggered in ("" on rows older than schema 3)
	Timeout     time.Duration     // the schedule's timeout when it was triggered (0: unknown, rows older than schema 3)
	// ProjectVersion is the published version of the Hex project the run executed
	// (Hex's projectVersion, kept as text); "" until Hex reports it.
	ProjectVersion string
	Created        time.Time // row created
	Updated        time.Time // row last changed
	// Owner is the owner (owners.id) whose admission moved the slot to triggering;
	// "" before any.
	Owner string
	// PlanReason says why the slot is planned where it is: which rule or spacing
	// shifted it past its nominal instant, or the queue or max_running hold it waited
	// in ("" when it was planned at its nominal instant). Written with the row.
	PlanReason string
	// WaitReason says why its trigger went out later than planned (the trigger
	// budget, a hold after a 429 or 503, paused auth); "" when it did not wait.
	WaitReason string
	// Adopted is true when its run was found in Hex's run list after an ambiguous
	// attempt (or by recovery), rather than created by a 201.
	Adopted bool
	// Client is the gateway client whose request made the slot; "" for other slots.
	Client string
	// IdemKey is the gateway request's Idempotency-Key; "" without one.
	IdemKey string
	// Deadline is the last instant a gateway slot's trigger may be sent; zero for
	// other slots (their schedule's window says it).
	Deadline time.Time
}

// Update carries the fields a Transition sets besides the state. Zero fields leave the
// stored value unchanged; At is required and becomes the row's updated time.
type Update struct {
	At        time.Time     // when the change happens (required)
	Reason    string        // why (required in spirit for skipped, failed, unknown)
	RunID     string        // Hex run id
	RunURL    string        // Hex run url
	TraceID   string        // Hex trace id
	Error     string        // last error
	Triggered time.Time     // when Hex accepted the trigger
	Started   time.Time     // run start
	Ended     time.Time     // run end
	Elapsed   time.Duration // run duration
	Project   string        // Hex project id the run is in
	Timeout   time.Duration // the schedule's timeout in force for the run
	// ProjectVersion is Hex's projectVersion of the run.
	ProjectVersion string
	// WaitReason is why the trigger went out later than planned (see Slot.WaitReason).
	WaitReason string
	// Adopted marks the run as adopted (see Slot.Adopted); false leaves the flag alone.
	Adopted bool
}

func (u Update) validate() error {
	if u.At.IsZero() {
		return fmt.Errorf("update time (At) is required")
	}
	return nil
}
