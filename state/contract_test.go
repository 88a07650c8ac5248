package state_test

import (
	"context"
	"testing"

	"hexcron/state"
	"hexcron/state/statetest"
)

// TestContract runs the state contract against SQLite files.
func TestContract(t *testing.T) {
	statetest.Run(t, statetest.Backend{
		Open: func(t *testing.T) statetest.Store {
			db, err := state.Open(context.Background(), t.TempDir()+"/hexcron.db", state.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		},
		Second: func(t *testing.T, s statetest.Store) statetest.Store {
			db, err := state.Open(context.Background(), s.(*state.DB).Path(), state.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		},
	})
}
