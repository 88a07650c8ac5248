package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"hexcron/state"
)

const selectSlot = `SELECT key, schedule, nominal_ms, matrix, kind, planned_ms, state, reason,
	coalesce(run_id, ''), run_url, trace_id, attempts, last_attempt_ms, last_error,
	triggered_ms, started_ms, ended_ms, elapsed_ms, project, timeout_ms, created_ms, updated_ms, project_version, coalesce(owner, ''),
	plan_reason, wait_reason, adopted, coalesce(client, ''), coalesce(idem_key, ''), deadline_ms FROM slots`

func scanSlot(r pgx.Row) (state.Slot, error) {
	var s state.Slot
	var nominal, planned, created, updated int64
	var lastAttempt, triggered, started, ended, elapsed, timeout, deadline *int64
	var matrix, kind, st string
	err := r.Scan(&s.Key, &s.Schedule, &nominal, &matrix, &kind, &planned, &st, &s.Reason,
		&s.RunID, &s.RunURL, &s.TraceID, &s.Attempts, &lastAttempt, &s.LastError,
		&triggered, &started, &ended, &elapsed, &s.Project, &timeout, &created, &updated, &s.ProjectVersion, &s.Owner,
		&s.PlanReason, &s.WaitReason, &s.Adopted, &s.Client, &s.IdemKey, &deadline)
	if err != nil {
		return state.Slot{}, err
	}
	s.Kind, s.State = state.Kind(kind), state.State(st)
	if s.Matrix, err = state.ParseMatrixText(matrix); err != nil {
		return state.Slot{}, err
	}
	s.Nominal, s.Planned, s.Created, s.Updated = fromMS(nominal), fromMS(planned), fromMS(created), fromMS(updated)
	s.LastAttempt, s.Triggered = fromNullMS(lastAttempt), fromNullMS(triggered)
	s.Started, s.Ended = fromNullMS(started), fromNullMS(ended)
	s.Deadline = fromNullMS(deadline)
	if elapsed != nil {
		s.Elapsed = time.Duration(*elapsed) * time.Millisecond
	}
	if timeout != nil {
		s.Timeout = time.Duration(*timeout) * time.Millisecond
	}
	return s, nil
}

func (db *DB) querySlots(ctx context.Context, op, query string, args ...any) ([]state.Slot, error) {
	var out []state.Slot
	err := db.read(ctx, op, func(ctx context.Context, q querier) error {
		rows, err := q.Query(ctx, query, args...)
		if err != nil {
			return d(err)
		}
		defer rows.Close()
		for rows.Next() {
			s, err := scanSlot(rows)
			if err != nil {
				return d(err)
			}
			out = append(out, s)
		}
		return d(rows.Err())
	})
	return out, err
}

// insertSlot inserts s; with ifAbsent, a row with the same key already there is left
// alone and 0 is returned.
func insertSlot(ctx context.Context, q querier, s state.Slot, now time.Time, ifAbsent bool) (int64, error) {
	query := `INSERT INTO slots (key, schedule, nominal_ms, matrix, kind, planned_ms,
		state, reason, attempts, last_attempt_ms, project, timeout_ms, owner, plan_reason, client, idem_key, deadline_ms, created_ms, updated_ms)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $15, $16, $17, $18, $14, $14)`
	if ifAbsent {
		query += " ON CONFLICT (key) DO NOTHING"
	}
	tag, err := q.Exec(ctx, query,
		s.Key, s.Schedule, s.Nominal.UnixMilli(), state.MatrixText(s.Matrix), string(s.Kind), s.Planned.UnixMilli(),
		string(s.State), s.Reason, s.Attempts, nullMS(s.LastAttempt), s.Project, nullDuration(s.Timeout),
		nullString(s.Owner), now.UnixMilli(), s.PlanReason, nullString(s.Client), nullString(s.IdemKey), nullMS(s.Deadline))
	return tag.RowsAffected(), err
}

// PlanSlot records a slot of the plan in state planned unless a row with its key
// exists (see state.DB.PlanSlot).
func (db *DB) PlanSlot(ctx context.Context, s state.Slot, now time.Time) (bool, error) {
	s, err := state.FillSlot(s)
	if err != nil {
		return false, fmt.Errorf("plan slot: %w", err)
	}
	created := false
	err = db.tx(ctx, "plan slot", func(ctx context.Context, tx pgx.Tx) error {
		created = false
		row := s
		row.State, row.Attempts, row.LastAttempt, row.Owner = state.StatePlanned, 0, time.Time{}, ""
		n, err := insertSlot(ctx, tx, row, now, true)
		if err != nil {
			return slotWriteError("plan slot", s.Key, err)
		}
		if n == 1 {
			created = true
			return nil
		}
		_, err = tx.Exec(ctx, `UPDATE slots SET planned_ms = $1, reason = $2, project = coalesce($3, project),
			timeout_ms = coalesce($4, timeout_ms), plan_reason = coalesce($7, plan_reason), deadline_ms = coalesce($8, deadline_ms),
			updated_ms = $5 WHERE key = $6 AND state = 'planned'`,
			s.Planned.UnixMilli(), s.Reason, nullString(s.Project), nullDuration(s.Timeout), now.UnixMilli(), s.Key, nullString(s.PlanReason),
			nullMS(s.Deadline))
		return d(err)
	})
	return created, err
}

// Slot returns the slot with the given key, or ErrNotFound.
func (db *DB) Slot(ctx context.Context, key string) (state.Slot, error) {
	var s state.Slot
	err := db.read(ctx, "get slot", func(ctx context.Context, q querier) error {
		var err error
		s, err = scanSlot(q.QueryRow(ctx, selectSlot+" WHERE key = $1", key))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("slot %s: %w", key, state.ErrNotFound)
		}
		return d(err)
	})
	return s, err
}

// Transition moves slot key to state to and sets the non-zero fields of u, in one
// transaction (see state.DB.Transition for the errors).
func (db *DB) Transition(ctx context.Context, key string, to state.State, u state.Update) error {
	if err := state.ValidateUpdate(u); err != nil {
		return fmt.Errorf("transition slot %s: %w", key, err)
	}
	if !to.Valid() {
		return fmt.Errorf("transition slot %s: unknown state %q", key, to)
	}
	return db.tx(ctx, "transition slot", func(ctx context.Context, tx pgx.Tx) error {
		return slotWriteError("transition slot", key, transition(ctx, tx, key, to, u))
	})
}

func transition(ctx context.Context, tx pgx.Tx, key string, to state.State, u state.Update) error {
	var from, runID string
	err := tx.QueryRow(ctx, "SELECT state, coalesce(run_id, '') FROM slots WHERE key = $1 FOR UPDATE", key).Scan(&from, &runID)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("slot %s: %w", key, state.ErrNotFound)
	}
	if err != nil {
		return err
	}
	if !state.CanTransition(state.State(from), to) {
		return &state.TransitionError{Slot: key, From: state.State(from), To: to}
	}
	if u.RunID != "" && runID != "" && u.RunID != runID {
		return &state.SlotTakenError{Slot: key, State: state.State(from), RunID: runID}
	}
	_, err = tx.Exec(ctx, `UPDATE slots SET state = $1,
		reason = coalesce($2, reason), run_id = coalesce($3, run_id), run_url = coalesce($4, run_url),
		trace_id = coalesce($5, trace_id), last_error = coalesce($6, last_error),
		triggered_ms = coalesce($7, triggered_ms), started_ms = coalesce($8, started_ms),
		ended_ms = coalesce($9, ended_ms), elapsed_ms = coalesce($10, elapsed_ms),
		project = coalesce($11, project), timeout_ms = coalesce($12, timeout_ms),
		project_version = coalesce($13, project_version), updated_ms = $14,
		wait_reason = coalesce($16, wait_reason), adopted = adopted OR $17
		WHERE key = $15`,
		string(to), nullString(u.Reason), nullString(u.RunID), nullString(u.RunURL),
		nullString(u.TraceID), nullString(u.Error),
		nullMS(u.Triggered), nullMS(u.Started), nullMS(u.Ended), nullDuration(u.Elapsed),
		nullString(u.Project), nullDuration(u.Timeout), nullString(u.ProjectVersion), u.At.UnixMilli(), key,
		nullString(u.WaitReason), u.Adopted)
	return err
}

// slotWriteError maps a unique-key violation to ErrRunClaimed (run id) or a clear
// duplicate-slot message; typed state errors pass with op; the rest are the driver's.
func slotWriteError(op, key string, err error) error {
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		switch pe.ConstraintName {
		case "slots_run":
			return fmt.Errorf("%s %s: %w", op, key, state.ErrRunClaimed)
		case "slots_instant":
			return fmt.Errorf("%s %s: another slot has the same schedule, nominal time and matrix: %w", op, key, err)
		}
	}
	var te *state.TransitionError
	if errors.As(err, &te) || errors.Is(err, state.ErrNotFound) || errors.Is(err, state.ErrSlotTaken) {
		return fmt.Errorf("%s: %w", op, err)
	}
	return d(err)
}

// SkipSlot records that slot s will never be triggered, and why (see state.DB.SkipSlot).
func (db *DB) SkipSlot(ctx context.Context, s state.Slot, reason string, at time.Time) error {
	s, err := state.FillSlot(s)
	if err != nil {
		return fmt.Errorf("skip slot: %w", err)
	}
	return db.tx(ctx, "skip slot", func(ctx context.Context, tx pgx.Tx) error {
		row := s
		row.State, row.Reason, row.Attempts, row.LastAttempt = state.StateSkipped, reason, 0, time.Time{}
		n, err := insertSlot(ctx, tx, row, at, true)
		if err != nil {
			return slotWriteError("skip slot", s.Key, err)
		}
		if n == 1 {
			return nil
		}
		return slotWriteError("skip slot", s.Key, transition(ctx, tx, s.Key, state.StateSkipped, state.Update{At: at, Reason: reason}))
	})
}

// ClaimedRun reports which slot, if any, already records Hex run id runID.
func (db *DB) ClaimedRun(ctx context.Context, runID string) (slotKey string, ok bool, err error) {
	err = db.read(ctx, "claimed run", func(ctx context.Context, q querier) error {
		err := q.QueryRow(ctx, "SELECT key FROM slots WHERE run_id = $1", runID).Scan(&slotKey)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		ok = err == nil
		return d(err)
	})
	return slotKey, ok, err
}

// SlotsInState returns the slots in any of the given states, by planned time then key.
func (db *DB) SlotsInState(ctx context.Context, states ...state.State) ([]state.Slot, error) {
	if len(states) == 0 {
		return nil, nil
	}
	return db.querySlots(ctx, "slots in state", selectSlot+" WHERE state = ANY($1) ORDER BY planned_ms, key", stateNames(states))
}

func stateNames(states []state.State) []string {
	out := make([]string, len(states))
	for i, s := range states {
		out[i] = string(s)
	}
	return out
}

// ActiveRuns returns the slots whose run Hex accepted and that have not ended.
func (db *DB) ActiveRuns(ctx context.Context) ([]state.Slot, error) {
	return db.SlotsInState(ctx, state.StateTriggered, state.StateRunning)
}

// LastRunPerSchedule returns, per schedule, the slot with the latest nominal time that
// is past planned.
func (db *DB) LastRunPerSchedule(ctx context.Context) (map[string]state.Slot, error) {
	return db.perSchedule(ctx, "last run per schedule",
		`WHERE key IN (SELECT key FROM (SELECT key, row_number() OVER (PARTITION BY schedule
			ORDER BY nominal_ms DESC, key DESC) AS rn FROM slots WHERE state <> 'planned') AS ranked WHERE rn = 1)`)
}

// NextPlanned returns, per schedule, the planned slot with the earliest planned time
// at or after now.
func (db *DB) NextPlanned(ctx context.Context, now time.Time) (map[string]state.Slot, error) {
	return db.perSchedule(ctx, "next planned",
		`WHERE key IN (SELECT key FROM (SELECT key, row_number() OVER (PARTITION BY schedule
			ORDER BY planned_ms, key) AS rn FROM slots WHERE state = 'planned' AND planned_ms >= $1) AS ranked WHERE rn = 1)`,
		now.UnixMilli())
}

func (db *DB) perSchedule(ctx context.Context, op, where string, args ...any) (map[string]state.Slot, error) {
	slots, err := db.querySlots(ctx, op, selectSlot+" "+where, args...)
	if err != nil {
		return nil, err
	}
	out := make(map[string]state.Slot, len(slots))
	for _, s := range slots {
		out[s.Schedule] = s
	}
	return out, nil
}

// History returns the slots matching f, newest nominal time first.
func (db *DB) History(ctx context.Context, f state.Filter) ([]state.Slot, error) {
	var where []string
	var args []any
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	if f.Schedule != "" {
		where = append(where, "schedule = "+arg(f.Schedule))
	}
	if f.Client != "" {
		where = append(where, "client = "+arg(f.Client))
	}
	if f.Gateway {
		where = append(where, "client IS NOT NULL")
	}
	if len(f.States) > 0 {
		where = append(where, "state = ANY("+arg(stateNames(f.States))+")")
	}
	if !f.Since.IsZero() {
		where = append(where, "nominal_ms >= "+arg(f.Since.UnixMilli()))
	}
	if !f.Until.IsZero() {
		where = append(where, "nominal_ms < "+arg(f.Until.UnixMilli()))
	}
	q := selectSlot
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY nominal_ms DESC, key DESC"
	if f.Limit > 0 {
		q += " LIMIT " + arg(f.Limit)
	}
	return db.querySlots(ctx, "history", q, args...)
}

// LastSuccess returns, per schedule, when its latest completed run ended.
func (db *DB) LastSuccess(ctx context.Context) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	err := db.read(ctx, "last success", func(ctx context.Context, q querier) error {
		rows, err := q.Query(ctx, `SELECT schedule, max(ended_ms) FROM slots
			WHERE state = 'completed' AND ended_ms IS NOT NULL GROUP BY schedule`)
		if err != nil {
			return d(err)
		}
		defer rows.Close()
		for rows.Next() {
			var schedule string
			var ended int64
			if err := rows.Scan(&schedule, &ended); err != nil {
				return d(err)
			}
			out[schedule] = fromMS(ended)
		}
		return d(rows.Err())
	})
	return out, err
}

// SetHeartbeat records that the daemon was alive at t.
func (db *DB) SetHeartbeat(ctx context.Context, t time.Time) error {
	return db.tx(ctx, "set heartbeat", func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO meta (name, value) VALUES ('heartbeat', $1)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value`, strconv.FormatInt(t.UnixMilli(), 10))
		return d(err)
	})
}

// Heartbeat returns the last instant recorded by SetHeartbeat; ok is false when the
// daemon never ran on this database.
func (db *DB) Heartbeat(ctx context.Context) (t time.Time, ok bool, err error) {
	err = db.read(ctx, "heartbeat", func(ctx context.Context, q querier) error {
		var v string
		err := q.QueryRow(ctx, "SELECT value FROM meta WHERE name = 'heartbeat'").Scan(&v)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return d(err)
		}
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("heartbeat %s: %w", db.where, err)
		}
		t, ok = fromMS(ms), true
		return nil
	})
	return t, ok, err
}
