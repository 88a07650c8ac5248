package state

import (
	"errors"
	"fmt"
)

// Sentinel errors callers branch on with errors.Is. The typed errors below wrap them and
// carry the details (errors.As).
var (
	// ErrNotHexcron means the file exists but is not a hexcron database (another SQLite
	// database, or not a SQLite file at all). The file is left untouched.
	ErrNotHexcron = errors.New("not a hexcron database")
	// ErrCorrupt means the file is a hexcron database but SQLite reports it damaged.
	ErrCorrupt = errors.New("database is corrupt")
	// ErrSchemaTooNew means the database was migrated by a newer hexcron than this binary.
	ErrSchemaTooNew = errors.New("database schema is newer than this hexcron")
	// ErrSchemaOutdated means a read-only open found a schema older than this binary
	// knows; a read-write open (hexcron run) migrates it.
	ErrSchemaOutdated = errors.New("database schema is older than this hexcron")
	// ErrReadOnly means the database file or its directory cannot be written.
	ErrReadOnly = errors.New("database location is read-only")
	// ErrDiskFull means a write failed because the disk (or the database's size limit) is full.
	ErrDiskFull = errors.New("disk full")
	// ErrNoDatabase means a read-only open found no database at the path.
	ErrNoDatabase = errors.New("no hexcron database")
	// ErrLocked means another process holds the daemon lock of the database.
	ErrLocked = errors.New("database is in use by another hexcron daemon")
	// ErrSlotTaken means Admit refused a slot that is already past triggering.
	ErrSlotTaken = errors.New("slot already triggered")
	// ErrIllegalTransition means a slot state change not in the transition table.
	ErrIllegalTransition = errors.New("illegal slot state transition")
	// ErrNotFound means the slot or ledger row does not exist.
	ErrNotFound = errors.New("not found")
	// ErrRunClaimed means the run id is already recorded for another slot.
	ErrRunClaimed = errors.New("run already recorded for another slot")
	// ErrBadSlotKey means a slot key does not follow `<schedule>@<RFC3339>[k=v,...]` or
	// `<schedule>@<RFC3339>+manual`.
	ErrBadSlotKey = errors.New("malformed slot key")
)

// SchemaTooNewError reports the schema version found and the newest this binary knows.
type SchemaTooNewError struct {
	Path  string
	Found int // user_version in the file
	Known int // newest migration embedded in this binary
}

func (e *SchemaTooNewError) Error() string {
	return fmt.Sprintf("database schema version %d is newer than this hexcron knows (%d): upgrade hexcron",
		e.Found, e.Known)
}

// Is makes errors.Is(err, ErrSchemaTooNew) true.
func (e *SchemaTooNewError) Is(target error) bool { return target == ErrSchemaTooNew }

// LockedError reports who holds the daemon lock.
type LockedError struct {
	Path string // the database file as this process named it
	Real string // the file it resolves to, when that differs (a symlink, "..")
	PID  int    // the holder's pid; 0 if it cannot be found
}

func (e *LockedError) Error() string {
	where := e.Path
	if e.Real != "" && e.Real != e.Path {
		where = e.Real + " (reached through " + e.Path + ")"
	}
	if e.PID == 0 {
		return fmt.Sprintf("database is in use by another hexcron daemon (the lock on %s is held, pid unknown)", where)
	}
	return fmt.Sprintf("database is in use by another hexcron daemon (pid %d holds the lock on %s)", e.PID, where)
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// TransitionError reports a refused state change.
type TransitionError struct {
	Slot     string
	From, To State
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("slot %s: illegal slot state transition %s -> %s", e.Slot, e.From, e.To)
}

// Is makes errors.Is(err, ErrIllegalTransition) true.
func (e *TransitionError) Is(target error) bool { return target == ErrIllegalTransition }

// SlotTakenError reports the state of a slot Admit refused to claim.
type SlotTakenError struct {
	Slot  string
	State State
	RunID string
}

func (e *SlotTakenError) Error() string {
	if e.RunID != "" {
		return fmt.Sprintf("slot %s already triggered (state %s, run %s)", e.Slot, e.State, e.RunID)
	}
	return fmt.Sprintf("slot %s already triggered (state %s)", e.Slot, e.State)
}

// Is makes errors.Is(err, ErrSlotTaken) true.
func (e *SlotTakenError) Is(target error) bool { return target == ErrSlotTaken }

// pathError attaches a path and a kind (a sentinel) to an underlying cause.
type pathError struct {
	op   string
	path string
	kind error
	msg  string // human explanation; may be empty
	err  error  // underlying cause; may be nil
}

func (e *pathError) Error() string {
	s := e.op + " " + e.path + ": " + e.kind.Error()
	if e.err != nil {
		s += ": " + e.err.Error()
	}
	if e.msg != "" {
		s += " (" + e.msg + ")"
	}
	return s
}

func (e *pathError) Is(target error) bool { return target == e.kind }
func (e *pathError) Unwrap() error        { return e.err }
