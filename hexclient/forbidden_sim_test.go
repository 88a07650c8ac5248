package hexclient_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"hexcron/hexclient"
	"hexcron/hexclient/hexsim"
)

const projB = "4a5b6c7d-8e9f-4a0b-9c1d-2e3f4a5b6c7d"

// postsTo returns hexsim's RunProject requests to project.
func (e *simEnv) postsTo(project string) []hexsim.Request {
	var out []hexsim.Request
	for _, r := range e.posts() {
		if strings.Contains(r.Path, project) {
			out = append(out, r)
		}
	}
	return out
}

// TestForbiddenHoldsOneProject runs the 403 a token's user can get under each of
// hexsim's choices (a project shared for viewing only, a project not shared, a token
// without the "Run projects" scope): only the refused project is held, nothing
// pauses, ten slots of it at once send one request, a held project is probed once an
// hour, at most 2 RunProject requests reach it in any hour, one ERROR is logged per
// hold, and a release (after the operator fixed access) lets it run again.
func TestForbiddenHoldsOneProject(t *testing.T) {
	const readOnly = "hxtw_read_only"
	for _, tc := range []struct {
		name   string
		cfg    hexsim.Config
		token  string
		bOK    bool // the other project can still be run
		reads  bool // reads of the refused project work
		reason string
	}{
		{"project shared for viewing (403 on RunProject)", hexsim.Config{Projects: []hexsim.Project{
			{ID: projA, Published: true, Access: hexsim.AccessRead}, {ID: projB, Published: true}}}, "", true, true, "permission to run"},
		{"project not shared (403 on every call)", hexsim.Config{Projects: []hexsim.Project{
			{ID: projA, Published: true, Access: hexsim.AccessNone}, {ID: projB, Published: true}}}, "", true, false, "access to this project"},
		{"token without the run scope", hexsim.Config{ReadOnlyTokens: []string{readOnly}, Projects: []hexsim.Project{
			{ID: projA, Published: true}, {ID: projB, Published: true}}}, readOnly, false, true, "Run projects scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newSimEnv(t, tc.cfg, func(c *hexclient.Config) {
					if tc.token != "" {
						c.Token = hexclient.StaticToken(tc.token)
					}
				})
				start := time.Now()
				// Ten slots of the refused project at once (a matrix), and one of another.
				var wg sync.WaitGroup
				errs := make([]error, 10)
				for i := range 10 {
					wg.Go(func() {
						_, errs[i] = e.trigger(fmt.Sprintf("a@%d", i), projA, hexclient.RunRequest{})
					})
				}
				wg.Wait()
				sent := 0
				for i, err := range errs {
					var pr *hexclient.ProjectRefusedError
					var ae *hexclient.APIError
					if !errors.As(err, &pr) || !errors.As(err, &ae) || ae.Status != http.StatusForbidden || !strings.Contains(ae.Reason, tc.reason) {
						t.Fatalf("slot a@%d: %v, want a *ProjectRefusedError with Hex's 403 %q", i, err, tc.reason)
					}
					if pr.TraceID() == "" || pr.Project != projA || !pr.NextProbe.Equal(pr.At.Add(time.Hour)) {
						t.Fatalf("slot a@%d: %+v", i, pr)
					}
					if pr.Sent {
						sent++
					}
				}
				if n := len(e.postsTo(projA)); sent != 1 || n != 1 {
					t.Fatalf("%d slots sent, %d RunProject requests reached Hex; want 1 and 1", sent, n)
				}
				gotB, errB := e.trigger("b@1", projB, hexclient.RunRequest{})
				if tc.bOK && (errB != nil || gotB.RunID == "") {
					t.Fatalf("the other project: %v (a 403 must hold only its project)", errB)
				}
				if !tc.bOK && !errors.Is(errB, hexclient.ErrProjectRefused) {
					t.Fatalf("the other project with a read-only token: %v", errB)
				}
				// Reads of the refused project: they work, or after one 403 they are held.
				for range 3 {
					_, err := e.c.GetProjectRuns(context.Background(), projA, hexclient.RunsQuery{Limit: 5, RunTriggerFilter: "API"})
					if (err == nil) != tc.reads {
						t.Fatalf("GetProjectRuns of the refused project: %v (reads work: %v)", err, tc.reads)
					}
				}
				if n := len(e.ops("GetProjectRuns")); (tc.reads && n != 3) || (!tc.reads && n != 1) {
					t.Fatalf("%d listings reached Hex, want %d", n, map[bool]int{true: 3, false: 1}[tc.reads])
				}
				// For three hours a slot of the refused project falls due every five
				// minutes: one probe an hour, never more than 2 RunProject in any hour.
				for i := range 36 {
					time.Sleep(start.Add(time.Duration(i+1) * 5 * time.Minute).Sub(time.Now()))
					_, err := e.trigger(fmt.Sprintf("a@late-%d", i), projA, hexclient.RunRequest{})
					if !errors.Is(err, hexclient.ErrProjectRefused) {
						t.Fatalf("slot %d: %v", i, err)
					}
				}
				posts := e.postsTo(projA)
				if len(posts) < 3 || len(posts) > 4 {
					t.Fatalf("%d RunProject requests to the refused project in 3h, want 1 and one probe an hour", len(posts))
				}
				for i := range posts {
					n := 0
					for _, q := range posts[i:] {
						if q.Time.Sub(posts[i].Time) < time.Hour {
							n++
						}
					}
					if n > 2 || posts[i].Status != http.StatusForbidden {
						t.Fatalf("%d RunProject within an hour of %s (%d): %v", n, posts[i].Time, posts[i].Status, statusesOf(posts))
					}
				}
				logs := e.logs.String()
				holds := 1
				if !tc.bOK {
					holds = 2 // both projects are refused, each held once
				}
				if n := strings.Count(logs, "level=ERROR"); n != holds {
					t.Fatalf("%d ERROR lines, want %d, one per hold:\n%s", n, holds, logs)
				}
				if strings.Contains(logs, "triggering is paused") {
					t.Fatal("a 403 paused everything")
				}
				// Access fixed, then released (the daemon does it on reload): it runs.
				for _, p := range tc.cfg.Projects {
					p.Access = hexsim.AccessFull
					if err := e.sim.SetProject(p); err != nil {
						t.Fatal(err)
					}
				}
				if tc.token != "" {
					return // a token's scope is fixed: nothing to release into
				}
				if got := e.c.ReleaseHolds(); len(got) == 0 {
					t.Fatal("no hold released")
				}
				if got, err := e.trigger("a@fixed", projA, hexclient.RunRequest{}); err != nil || got.RunID == "" {
					t.Fatalf("after the fix: %v", err)
				}
			})
		})
	}
}
