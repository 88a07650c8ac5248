package state

import (
	"errors"
	"fmt"
	"time"
)

// What a second backend (state/postgres) shares with this one: the slot key rules, the
// stored form of matrix values, the transition table (slot.go), and the typed errors.

// ErrUnreachable means the database server cannot be reached (refused, timed out, the
// connection dropped, the server is starting or shutting down). Nothing was written by
// the operation that failed; callers retry, and the daemon treats it as an outage.
var ErrUnreachable = errors.New("database unreachable")

// ErrLeaseLapsed means the leader's lease expired on the database server's clock before
// it was renewed, while nobody else took it: the leader may not admit until it renews
// (it is not fenced: no other daemon leads).
var ErrLeaseLapsed = errors.New("the lease lapsed before it was renewed")

// Error returns an error of the given kind (one of this package's sentinels: errors.Is
// matches it) for operation op on the database named where (a path or a URL without
// its password), with a human explanation msg (may be empty) and the underlying cause
// (may be nil).
func Error(op, where string, kind error, msg string, cause error) error {
	return &pathError{op: op, path: where, kind: kind, msg: msg, err: cause}
}

// FillSlot fills the fields of s a caller left empty from its key (Schedule, Nominal,
// Matrix, Kind) and the defaults (Kind scheduled, Planned = Nominal), as PlanSlot and
// SkipSlot do.
func FillSlot(s Slot) (Slot, error) { return complete(s) }

// MatrixText is the stored form of matrix values: canonical JSON with sorted keys, or
// "" when there are none.
func MatrixText(m map[string]string) string { return matrixText(m) }

// ParseMatrixText reads MatrixText's form back.
func ParseMatrixText(s string) (map[string]string, error) { return parseMatrixText(s) }

// TerminalStates lists the states no transition leaves, in States order.
func TerminalStates() []State {
	var out []State
	for _, s := range States {
		if s.Terminal() {
			out = append(out, s)
		}
	}
	return out
}

// LeaseFence is nil when by still holds lease cur (same owner, same epoch), else the
// *FencedError describing what changed.
func LeaseFence(cur Lease, by Holder) error { return leaseFence(cur, by) }

// OwnerRetention is how long an expired owner row is kept before a registration
// deletes it.
const OwnerRetention = ownerRetention

// NewOwnerID returns a random owner id: 16 hex characters.
func NewOwnerID() (string, error) { return newOwnerID() }

// ValidateUpdate is nil when u can be applied (its At is set).
func ValidateUpdate(u Update) error { return u.validate() }

// LapsedError reports a lease that expired on the server's clock before its leader
// renewed it.
type LapsedError struct {
	Owner   string
	Epoch   int64
	Expired time.Time // when it expired, on the server's clock
}

func (e *LapsedError) Error() string {
	return fmt.Sprintf("owner %s: the lease (epoch %d) lapsed at %s before it was renewed", e.Owner, e.Epoch, e.Expired.Format(time.RFC3339Nano))
}

// Is makes errors.Is(err, ErrLeaseLapsed) true.
func (e *LapsedError) Is(target error) bool { return target == ErrLeaseLapsed }
