package hexclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// listServer serves one project's API runs in a fixed order, pageCap at most per page.
type listServer struct {
	mu      sync.Mutex
	runs    []RunStatus // in listing order
	pageCap int
	calls   int
}

func (s *listServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	offset, _ := strconv.Atoi(q.Get("offset"))
	if s.pageCap > 0 {
		limit = min(limit, s.pageCap)
	}
	type wire struct {
		RunID      string  `json:"runId"`
		Status     string  `json:"status"`
		RunTrigger string  `json:"runTrigger"`
		StartTime  *string `json:"startTime"`
	}
	out := []wire{}
	for i := offset; i < min(len(s.runs), offset+limit); i++ {
		r := s.runs[i]
		var st *string
		if !r.StartTime.IsZero() {
			v := r.StartTime.Format(time.RFC3339Nano)
			st = &v
		}
		out = append(out, wire{r.RunID, string(r.Status), "API", st})
	}
	var next any
	if offset+limit < len(s.runs) {
		next = fmt.Sprintf("http://x/api/v1/projects/p/runs?offset=%d", offset+limit)
	}
	json.NewEncoder(w).Encode(map[string]any{"runs": out, "nextPage": next, "previousPage": nil, "traceId": "t"})
}

// TestListSinceEveryOrder: whatever the listing order, page size and length, every run
// that started at or after the cutoff (and every run not started yet) is seen, or the
// listing is reported incomplete; sorted listings are read in O(log n) pages.
func TestListSinceEveryOrder(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC)
	cutoff := t0.Add(-30 * time.Second)
	type order string
	orders := []order{"newest", "oldest", "unordered", "newest by creation, start jittered", "oldest, a page sorted the other way"}
	for _, o := range orders {
		for _, old := range []int{0, 1, 99, 100, 101, 150, 1000, 10000} {
			for _, recent := range []int{0, 1, 3} {
				for _, pageCap := range []int{0, 25} {
					name := fmt.Sprintf("%s/%d old/%d recent/cap %d", o, old, recent, pageCap)
					t.Run(name, func(t *testing.T) {
						synctest.Test(t, func(t *testing.T) {
							rng := rand.New(rand.NewPCG(uint64(old), uint64(recent)))
							var runs []RunStatus // oldest first
							for i := range old {
								runs = append(runs, RunStatus{RunID: fmt.Sprintf("old-%d", i), Status: StatusCompleted,
									StartTime: cutoff.Add(-time.Duration(old-i) * time.Minute)})
							}
							var want []string
							for i := range recent {
								id := fmt.Sprintf("new-%d", i)
								st := RunStatus{RunID: id, Status: StatusPending, StartTime: t0.Add(time.Duration(i) * time.Second)}
								if i == 2 {
									st.StartTime = time.Time{} // not started yet: no start time
								}
								runs = append(runs, st)
								want = append(want, id)
							}
							switch o {
							case "newest":
								slices.Reverse(runs)
							case "unordered":
								rng.Shuffle(len(runs), func(i, j int) { runs[i], runs[j] = runs[j], runs[i] })
							case "newest by creation, start jittered":
								slices.Reverse(runs)
								for i := range runs {
									if !runs[i].StartTime.IsZero() && rng.IntN(3) == 0 {
										runs[i].StartTime = runs[i].StartTime.Add(time.Duration(rng.IntN(120)) * time.Second)
									}
								}
							case "oldest, a page sorted the other way":
								if len(runs) > 300 {
									slices.Reverse(runs[200:300])
								}
							}
							srv := &listServer{runs: runs, pageCap: pageCap}
							c, _, _ := testClient(t, srv, StaticToken("hxtp_ok"), func(cfg *Config) {
								cfg.ReadLimits = ReadLimits{All: Rule{Limit: 100000, Per: time.Minute}, Status: []Rule{{Limit: 100000, Per: time.Minute}}}
							})
							got, err := c.listSince(context.Background(), "p", cutoff)
							pageSize := 100
							if pageCap > 0 {
								pageSize = pageCap
							}
							pages := (len(runs) + pageSize - 1) / pageSize
							var inc *IncompleteListingError
							if errors.As(err, &inc) {
								// Only a listing that had to be read whole, and is longer than the bound.
								if pages <= c.cfg.ReconcilePages || (o != "unordered" && o != "newest by creation, start jittered" && o != "oldest, a page sorted the other way") {
									t.Fatalf("incomplete after %d calls: %v (%d pages in all)", srv.calls, err, pages)
								}
								if srv.calls > c.cfg.ReconcilePages {
									t.Fatalf("%d calls, more than the bound %d", srv.calls, c.cfg.ReconcilePages)
								}
								return
							}
							if err != nil {
								t.Fatal(err)
							}
							seen := map[string]bool{}
							for _, r := range got {
								seen[r.RunID] = true
							}
							for _, id := range want {
								if !seen[id] {
									t.Fatalf("run %s not seen (%d calls, %d pages in all)", id, srv.calls, pages)
								}
							}
							if (o == "newest" || o == "oldest") && pages > 20 && srv.calls > 30 {
								t.Errorf("a sorted listing of %d pages took %d reads", pages, srv.calls)
							}
						})
					})
				}
			}
		}
	}
}
