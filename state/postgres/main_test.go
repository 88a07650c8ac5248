package postgres_test

import (
	"context"
	"os"
	"sync"
	"testing"

	"hexcron/internal/pgtest"
	"hexcron/state/postgres"
	"hexcron/state/statetest"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode, os.Args[len(os.Args)-1]))
	}
	os.Exit(pgtest.Main(m))
}

// urls remembers the URL each test database was opened with (Second opens another
// handle on it).
var urls sync.Map // *postgres.DB -> string

func open(t *testing.T, url string, opts postgres.Options) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), url, opts)
	if err != nil {
		t.Fatal(err)
	}
	urls.Store(db, url)
	t.Cleanup(func() { db.Close() })
	return db
}

// TestContract runs the state contract against PostgreSQL, with the instants the
// tests give (ClientClock): the contract's tests drive time themselves. The server's
// clock is tested in clock_test.go.
func TestContract(t *testing.T) {
	statetest.Run(t, statetest.Backend{
		Open: func(t *testing.T) statetest.Store {
			return open(t, pgtest.NewURL(t), postgres.Options{ClientClock: true})
		},
		Second: func(t *testing.T, s statetest.Store) statetest.Store {
			u, _ := urls.Load(s)
			return open(t, u.(string), postgres.Options{ClientClock: true})
		},
	})
}
