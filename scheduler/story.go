package scheduler

import (
	"context"
	"time"

	"hexcron/state"
)

// StoryStore is what a slot's story needs of the database (*state.DB, read-only).
type StoryStore interface {
	Slot(ctx context.Context, key string) (state.Slot, error)
	SlotAttempts(ctx context.Context, key string) ([]state.Attempt, error)
}

// Story is one slot's whole story as the database keeps it, so that the journal does
// not have to: where and why it was planned (Slot.PlanReason), its attempts (the count
// and last one on the row; each one's send and answer while the ledger keeps it, about
// a day), why it waited (Slot.WaitReason), whether its run was created or adopted, and
// how it ended. `hexcron history --slot KEY` prints it.
type Story struct {
	Slot     state.Slot
	Attempts []state.Attempt
}

// SlotStory reads the story of slot key (state.ErrNotFound when there is none: never
// recorded, or pruned).
func SlotStory(ctx context.Context, st StoryStore, key string) (Story, error) {
	s, err := st.Slot(ctx, key)
	if err != nil {
		return Story{}, err
	}
	atts, err := st.SlotAttempts(ctx, key)
	if err != nil {
		return Story{}, err
	}
	return Story{Slot: s, Attempts: atts}, nil
}

// Shift is how long after its nominal instant the slot was planned.
func (s Story) Shift() time.Duration { return s.Slot.Planned.Sub(s.Slot.Nominal) }
