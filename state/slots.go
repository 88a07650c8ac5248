package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"
)

const selectSlot = `SELECT key, schedule, nominal_ms, matrix, kind, planned_ms, state, reason,
	coalesce(run_id, ''), run_url, trace_id, attempts, last_attempt_ms, last_error,
	triggered_ms, started_ms, ended_ms, elapsed_ms, project, timeout_ms, created_ms, updated_ms, project_version, coalesce(owner, ''),
	plan_reason, wait_reason, adopted, coalesce(client, ''), coalesce(idem_key, ''), deadline_ms FROM slots`

type rowScanner interface{ Scan(dest ...any) error }

func scanSlot(r rowScanner) (Slot, error) {
	var s Slot
	var nominal, planned, created, updated int64
	var lastAttempt, triggered, started, ended, elapsed, timeout, deadline sql.NullInt64
	var matrix string
	err := r.Scan(&s.Key, &s.Schedule, &nominal, &matrix, &s.Kind, &planned, &s.State, &s.Reason,
		&s.RunID, &s.RunURL, &s.TraceID, &s.Attempts, &lastAttempt, &s.LastError,
		&triggered, &started, &ended, &elapsed, &s.Project, &timeout, &created, &updated, &s.ProjectVersion, &s.Owner,
		&s.PlanReason, &s.WaitReason, &s.Adopted, &s.Client, &s.IdemKey, &deadline)
	if err != nil {
		return Slot{}, err
	}
	if s.Matrix, err = parseMatrixText(matrix); err != nil {
		return Slot{}, err
	}
	s.Nominal, s.Planned, s.Created, s.Updated = fromMS(nominal), fromMS(planned), fromMS(created), fromMS(updated)
	s.LastAttempt, s.Triggered = fromNullMS(lastAttempt), fromNullMS(triggered)
	s.Started, s.Ended = fromNullMS(started), fromNullMS(ended)
	s.Deadline = fromNullMS(deadline)
	if elapsed.Valid {
		s.Elapsed = time.Duration(elapsed.Int64) * time.Millisecond
	}
	if timeout.Valid {
		s.Timeout = time.Duration(timeout.Int64) * time.Millisecond
	}
	return s, nil
}

func (db *DB) querySlots(ctx context.Context, op, query string, args ...any) ([]Slot, error) {
	rows, err := db.sql.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, classify(op, db.path, err)
	}
	defer rows.Close()
	var out []Slot
	for rows.Next() {
		s, err := scanSlot(rows)
		if err != nil {
			return nil, classify(op, db.path, err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, classify(op, db.path, err)
	}
	return out, nil
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func insertSlot(ctx context.Context, x execer, s Slot, now time.Time) error {
	_, err := x.ExecContext(ctx, `INSERT INTO slots (key, schedule, nominal_ms, matrix, kind, planned_ms,
		state, reason, attempts, last_attempt_ms, project, timeout_ms, owner, plan_reason, client, idem_key, deadline_ms, created_ms, updated_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.Key, s.Schedule, s.Nominal.UnixMilli(), matrixText(s.Matrix), string(s.Kind), s.Planned.UnixMilli(),
		string(s.State), s.Reason, s.Attempts, nullMS(s.LastAttempt), s.Project, nullDuration(s.Timeout),
		nullString(s.Owner), s.PlanReason, nullString(s.Client), nullString(s.IdemKey), nullMS(s.Deadline), now.UnixMilli(), now.UnixMilli())
	return err
}

// complete fills the fields a caller left empty from the slot key.
func complete(s Slot) (Slot, error) {
	if s.Schedule == "" || s.Nominal.IsZero() {
		k, err := ParseSlotKey(s.Key)
		if err != nil {
			return Slot{}, err
		}
		if s.Schedule == "" {
			s.Schedule = k.Schedule
		}
		if s.Nominal.IsZero() {
			s.Nominal = k.Nominal
		}
		if s.Matrix == nil {
			s.Matrix = k.Matrix
		}
		if s.Kind == "" {
			s.Kind = k.Kind
		}
	}
	if s.Kind == "" {
		s.Kind = KindScheduled
	}
	if s.Planned.IsZero() {
		s.Planned = s.Nominal
	}
	return s, nil
}

// PlanSlot records a slot of the plan in state planned unless a row with its key
// exists. A slot still planned gets its planned time and reason updated (re-planning on
// reload; the reason says why it waits, "" when it does not), its plan reason (why it
// is planned where it is) when given, and its project, timeout and deadline when
// given; a slot past planned is left alone. Fields the caller leaves zero
// are taken from the key (Schedule, Nominal, Matrix, Kind) or default (Planned =
// Nominal). It reports whether the row was created.
func (db *DB) PlanSlot(ctx context.Context, s Slot, now time.Time) (bool, error) {
	s, err := complete(s)
	if err != nil {
		return false, fmt.Errorf("plan slot: %w", err)
	}
	tx, err := db.begin(ctx)
	if err != nil {
		return false, classify("plan slot", db.path, err)
	}
	defer tx.Rollback()
	var state State
	err = tx.QueryRowContext(ctx, "SELECT state FROM slots WHERE key = ?", s.Key).Scan(&state)
	created := false
	switch {
	case errors.Is(err, sql.ErrNoRows):
		s.State, s.Attempts, s.LastAttempt, s.Owner = StatePlanned, 0, time.Time{}, ""
		if err := insertSlot(ctx, tx, s, now); err != nil {
			return false, slotWriteError("plan slot", db.path, s.Key, err)
		}
		created = true
	case err != nil:
		return false, classify("plan slot", db.path, err)
	case state == StatePlanned:
		_, err := tx.ExecContext(ctx, `UPDATE slots SET planned_ms = ?, reason = ?, project = coalesce(?, project),
			timeout_ms = coalesce(?, timeout_ms), plan_reason = coalesce(?, plan_reason), deadline_ms = coalesce(?, deadline_ms),
			updated_ms = ? WHERE key = ?`,
			s.Planned.UnixMilli(), s.Reason, nullString(s.Project), nullDuration(s.Timeout), nullString(s.PlanReason), nullMS(s.Deadline),
			now.UnixMilli(), s.Key)
		if err != nil {
			return false, classify("plan slot", db.path, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return false, classify("plan slot", db.path, err)
	}
	return created, nil
}

// Slot returns the slot with the given key, or ErrNotFound.
func (db *DB) Slot(ctx context.Context, key string) (Slot, error) {
	s, err := scanSlot(db.sql.QueryRowContext(ctx, selectSlot+" WHERE key = ?", key))
	if errors.Is(err, sql.ErrNoRows) {
		return Slot{}, fmt.Errorf("slot %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return Slot{}, classify("get slot", db.path, err)
	}
	return s, nil
}

// Transition moves slot key to state to and sets the non-zero fields of u, in one
// transaction. A change not in the transition table (anything out of a terminal state,
// any backward move) is refused with a *TransitionError (ErrIllegalTransition); a run id
// already recorded for another slot is refused with ErrRunClaimed; a different run id
// than the one the slot already records is refused with a *SlotTakenError (ErrSlotTaken);
// a missing slot gives ErrNotFound.
func (db *DB) Transition(ctx context.Context, key string, to State, u Update) error {
	if err := u.validate(); err != nil {
		return fmt.Errorf("transition slot %s: %w", key, err)
	}
	if !to.Valid() {
		return fmt.Errorf("transition slot %s: unknown state %q", key, to)
	}
	tx, err := db.begin(ctx)
	if err != nil {
		return classify("transition slot", db.path, err)
	}
	defer tx.Rollback()
	if err := transition(ctx, tx, key, to, u); err != nil {
		return slotWriteError("transition slot", db.path, key, err)
	}
	if err := tx.Commit(); err != nil {
		return classify("transition slot", db.path, err)
	}
	return nil
}

func transition(ctx context.Context, tx *sql.Tx, key string, to State, u Update) error {
	var from State
	var runID string
	err := tx.QueryRowContext(ctx, "SELECT state, coalesce(run_id, '') FROM slots WHERE key = ?", key).Scan(&from, &runID)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("slot %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return err
	}
	if !CanTransition(from, to) {
		return &TransitionError{Slot: key, From: from, To: to}
	}
	if u.RunID != "" && runID != "" && u.RunID != runID {
		// A slot has one run: never let a second trigger overwrite the first's id.
		return &SlotTakenError{Slot: key, State: from, RunID: runID}
	}
	var elapsed any
	if u.Elapsed != 0 {
		elapsed = u.Elapsed.Milliseconds()
	}
	_, err = tx.ExecContext(ctx, `UPDATE slots SET state = ?,
		reason = coalesce(?, reason), run_id = coalesce(?, run_id), run_url = coalesce(?, run_url),
		trace_id = coalesce(?, trace_id), last_error = coalesce(?, last_error),
		triggered_ms = coalesce(?, triggered_ms), started_ms = coalesce(?, started_ms),
		ended_ms = coalesce(?, ended_ms), elapsed_ms = coalesce(?, elapsed_ms),
		project = coalesce(?, project), timeout_ms = coalesce(?, timeout_ms),
		project_version = coalesce(?, project_version), wait_reason = coalesce(?, wait_reason),
		adopted = max(adopted, ?), updated_ms = ?
		WHERE key = ?`,
		string(to), nullString(u.Reason), nullString(u.RunID), nullString(u.RunURL),
		nullString(u.TraceID), nullString(u.Error),
		nullMS(u.Triggered), nullMS(u.Started), nullMS(u.Ended), elapsed,
		nullString(u.Project), nullDuration(u.Timeout), nullString(u.ProjectVersion), nullString(u.WaitReason),
		u.Adopted, u.At.UnixMilli(), key)
	return err
}

// slotWriteError maps a unique-constraint violation to ErrRunClaimed (run id) or a clear
// duplicate-slot message, and everything else through classify.
func slotWriteError(op, path, key string, err error) error {
	var se sqlite3.Error
	if errors.As(err, &se) && se.Code == sqlite3.ErrConstraint {
		switch msg := se.Error(); {
		case strings.Contains(msg, "slots.run_id"):
			return fmt.Errorf("%s %s: %w", op, key, ErrRunClaimed)
		case strings.Contains(msg, "slots.schedule"):
			return fmt.Errorf("%s %s: another slot has the same schedule, nominal time and matrix: %w", op, key, err)
		}
	}
	var te *TransitionError
	if errors.As(err, &te) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrSlotTaken) {
		return fmt.Errorf("%s: %w", op, err)
	}
	return classify(op, path, err)
}

// SkipSlot records that slot s will never be triggered, and why: it moves an existing
// slot to skipped (only from planned or triggering), or inserts it directly as skipped
// when it has no row yet (fields as in PlanSlot). Nothing is dropped without a row.
func (db *DB) SkipSlot(ctx context.Context, s Slot, reason string, at time.Time) error {
	s, err := complete(s)
	if err != nil {
		return fmt.Errorf("skip slot: %w", err)
	}
	tx, err := db.begin(ctx)
	if err != nil {
		return classify("skip slot", db.path, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM slots WHERE key = ?", s.Key).Scan(&n); err != nil {
		return classify("skip slot", db.path, err)
	}
	if n == 0 {
		s.State, s.Reason, s.Attempts, s.LastAttempt = StateSkipped, reason, 0, time.Time{}
		err = insertSlot(ctx, tx, s, at)
	} else {
		err = transition(ctx, tx, s.Key, StateSkipped, Update{At: at, Reason: reason})
	}
	if err != nil {
		return slotWriteError("skip slot", db.path, s.Key, err)
	}
	if err := tx.Commit(); err != nil {
		return classify("skip slot", db.path, err)
	}
	return nil
}

// ClaimedRun reports which slot, if any, already records Hex run id runID (used when
// reconciling, so that one run is never adopted by two slots).
func (db *DB) ClaimedRun(ctx context.Context, runID string) (slotKey string, ok bool, err error) {
	err = db.sql.QueryRowContext(ctx, "SELECT key FROM slots WHERE run_id = ?", runID).Scan(&slotKey)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, classify("claimed run", db.path, err)
	}
	return slotKey, true, nil
}

// SlotsInState returns the slots in any of the given states, by planned time then key.
// Recovery uses SlotsInState(ctx, StateTriggering).
func (db *DB) SlotsInState(ctx context.Context, states ...State) ([]Slot, error) {
	if len(states) == 0 {
		return nil, nil
	}
	args := make([]any, len(states))
	for i, s := range states {
		args[i] = string(s)
	}
	return db.querySlots(ctx, "slots in state",
		selectSlot+" WHERE state IN ("+placeholders(len(states))+") ORDER BY planned_ms, key", args...)
}

// ActiveRuns returns the slots whose run Hex accepted and that have not ended
// (triggered or running), by planned time.
func (db *DB) ActiveRuns(ctx context.Context) ([]Slot, error) {
	return db.SlotsInState(ctx, StateTriggered, StateRunning)
}

// LastRunPerSchedule returns, per schedule, the slot with the latest nominal time that
// is past planned (triggering, a run, or a terminal outcome including skipped and failed).
func (db *DB) LastRunPerSchedule(ctx context.Context) (map[string]Slot, error) {
	return db.perSchedule(ctx, "last run per schedule",
		`WHERE key IN (SELECT key FROM (SELECT key, row_number() OVER (PARTITION BY schedule
			ORDER BY nominal_ms DESC, key DESC) AS rn FROM slots WHERE state <> 'planned') WHERE rn = 1)`)
}

// NextPlanned returns, per schedule, the planned slot with the earliest planned time at
// or after now.
func (db *DB) NextPlanned(ctx context.Context, now time.Time) (map[string]Slot, error) {
	return db.perSchedule(ctx, "next planned",
		`WHERE key IN (SELECT key FROM (SELECT key, row_number() OVER (PARTITION BY schedule
			ORDER BY planned_ms, key) AS rn FROM slots WHERE state = 'planned' AND planned_ms >= ?) WHERE rn = 1)`,
		now.UnixMilli())
}

func (db *DB) perSchedule(ctx context.Context, op, where string, args ...any) (map[string]Slot, error) {
	slots, err := db.querySlots(ctx, op, selectSlot+" "+where, args...)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Slot, len(slots))
	for _, s := range slots {
		out[s.Schedule] = s
	}
	return out, nil
}

// Filter selects History rows; zero fields do not filter.
type Filter struct {
	Schedule string    // only this schedule
	States   []State   // only these states
	Since    time.Time // nominal time at or after
	Until    time.Time // nominal time before
	Limit    int       // at most this many rows (0: all)
	Client   string    // only slots this gateway client's requests made
	Gateway  bool      // only slots gateway requests made (any client)
}

// History returns the slots matching f, newest nominal time first.
func (db *DB) History(ctx context.Context, f Filter) ([]Slot, error) {
	var where []string
	var args []any
	if f.Schedule != "" {
		where, args = append(where, "schedule = ?"), append(args, f.Schedule)
	}
	if f.Client != "" {
		where, args = append(where, "client = ?"), append(args, f.Client)
	}
	if f.Gateway {
		where = append(where, "client IS NOT NULL")
	}
	if len(f.States) > 0 {
		where = append(where, "state IN ("+placeholders(len(f.States))+")")
		for _, s := range f.States {
			args = append(args, string(s))
		}
	}
	if !f.Since.IsZero() {
		where, args = append(where, "nominal_ms >= ?"), append(args, f.Since.UnixMilli())
	}
	if !f.Until.IsZero() {
		where, args = append(where, "nominal_ms < ?"), append(args, f.Until.UnixMilli())
	}
	q := selectSlot
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY nominal_ms DESC, key DESC"
	if f.Limit > 0 {
		q, args = q+" LIMIT ?", append(args, f.Limit)
	}
	return db.querySlots(ctx, "history", q, args...)
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}
