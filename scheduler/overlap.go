package scheduler

import "fmt"

// queuedReason starts the reason a queued firing's row carries while it waits (the
// row stays planned): a start tells a queued firing from one merely planned by it.
const queuedReason = "overlap queue: waits for run "

// Overlap policies, as written in the config.
const (
	OverlapSkip    = "skip"
	OverlapQueue   = "queue"
	OverlapReplace = "replace"
	OverlapAllow   = "allow"
)

// action is what the daemon does with a due firing.
type action int

const (
	actFire    action = iota // trigger now
	actSkip                  // record the slot skipped
	actQueue                 // wait for the running one to end, then trigger
	actReplace               // cancel the running one(s), then trigger
)

func (a action) String() string {
	return [...]string{"fire", "skip", "queue", "replace"}[a]
}

// decideOverlap applies a schedule's overlap policy to a due firing of a series that
// has `active` runs not yet terminal and (for queue) whether one firing already waits.
// It returns the action and, for anything but a plain fire, the reason to record.
func decideOverlap(policy string, active int, queued bool, activeRun string) (action, string) {
	if active == 0 {
		return actFire, ""
	}
	switch policy {
	case OverlapAllow:
		return actFire, fmt.Sprintf("overlap allow: run %s still going", activeRun)
	case OverlapQueue:
		if queued {
			return actSkip, fmt.Sprintf("overlap queue: run %s still going and a firing already waits", activeRun)
		}
		return actQueue, fmt.Sprintf(queuedReason+"%s to end", activeRun)
	case OverlapReplace:
		return actReplace, fmt.Sprintf("overlap replace: cancels run %s", activeRun)
	default:
		return actSkip, fmt.Sprintf("overlap skip: previous run %s still going", activeRun)
	}
}
