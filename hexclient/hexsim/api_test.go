package hexsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestAuth(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		header string
		want   int
	}{
		{"open mode personal", Config{}, "Bearer hxtp_abc", 200},
		{"open mode workspace", Config{}, "Bearer hxtw_abc-DEF_1", 200},
		{"open mode lowercase scheme", Config{}, "bearer hxtp_abc", 200},
		{"open mode bad prefix", Config{}, "Bearer abc", 401},
		{"open mode bare prefix", Config{}, "Bearer hxtp_", 401},
		{"open mode bad char", Config{}, "Bearer hxtp_a.b", 401},
		{"no header", Config{}, "", 401},
		{"basic auth", Config{}, "Basic aHh0cF9hYmM=", 401},
		{"listed token", Config{Tokens: []string{tokA}}, "Bearer " + tokA, 200},
		{"unlisted token", Config{Tokens: []string{tokA}}, "Bearer " + tokB, 401},
		{"user token", Config{Users: []User{{Name: "u", Tokens: []string{tokB}}}}, "Bearer " + tokB, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, tt.cfg)
				req, _ := http.NewRequest("GET", base+"/projects", nil)
				if tt.header != "" {
					req.Header.Set("Authorization", tt.header)
				}
				res, err := h.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 100)
				n, _ := res.Body.Read(buf)
				res.Body.Close()
				if res.StatusCode != tt.want {
					t.Fatalf("status %d, want %d", res.StatusCode, tt.want)
				}
				if tt.want == 401 && (string(buf[:n]) != "Unauthorized" || res.Header.Get("x-trace-id") == "") {
					t.Fatalf("401 body %q trace %q, want plain Unauthorized and a trace id", buf[:n], res.Header.Get("x-trace-id"))
				}
				rq := h.sim.Requests()[0]
				if tt.want == 401 && rq.User != "" || tt.want == 200 && rq.User == "" {
					t.Fatalf("ledger user %q", rq.User)
				}
			})
		})
	}
}

// TestRotateToken: after rotation the old token gets 401, the new one acts as the same
// user (same budget), over Go and over /_sim/rotate.
func TestRotateToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{Users: []User{{Name: "alice", Tokens: []string{tokA}}}})
		for range 19 {
			h.trigger(tokA, proj1)
		}
		h.sim.RotateToken(tokA, "hxtp_alice2")
		if r, _ := h.trigger(tokA, proj1); r.status != 401 {
			t.Fatalf("old token after rotation: %d", r.status)
		}
		if r, _ := h.trigger("hxtp_alice2", proj1); r.status != 201 {
			t.Fatalf("new token: %d", r.status)
		}
		if r, _ := h.trigger("hxtp_alice2", proj1); r.status != 429 {
			t.Fatalf("21st trigger of alice with the new token: %d, want 429 (same user)", r.status)
		}
		if r := h.do("POST", "/_sim/rotate", "", `{"old":"hxtp_alice2","new":"hxtw_alice3"}`); r.status != 204 {
			t.Fatalf("POST /_sim/rotate: %d", r.status)
		}
		if r := h.do("GET", "/projects", "hxtp_alice2", nil); r.status != 401 {
			t.Fatalf("rotated-out token: %d", r.status)
		}
		if r := h.do("GET", "/projects", "hxtw_alice3", nil); r.status != 200 {
			t.Fatalf("rotated-in token: %d", r.status)
		}
		for _, rq := range h.sim.Requests() {
			if rq.User != "" && rq.User != "alice" {
				t.Fatalf("ledger user %q", rq.User)
			}
		}
	})
}

// TestLedgerHidesTokens: neither Requests nor /_sim/requests shows a raw token.
func TestLedgerHidesTokens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{})
		h.trigger("hxtp_secret_value", proj1)
		h.do("GET", "/projects", "hxtp_wrong.token", nil)
		r := h.do("GET", "/_sim/requests", "", nil)
		var reqs []Request
		r.json(t, &reqs)
		if len(reqs) != 2 || !strings.HasPrefix(reqs[0].Token, "sha256:") || reqs[0].Token == reqs[1].Token {
			t.Fatalf("ledger tokens: %+v", reqs)
		}
		if strings.Contains(string(r.body), "secret_value") || strings.Contains(string(r.body), "wrong.token") {
			t.Fatal("a raw token is in /_sim/requests")
		}
		if reqs[0].Op != "RunProject" || reqs[0].RunCreated == "" || reqs[0].Method != "POST" || reqs[0].Path != "/api/v1/projects/"+proj1+"/runs" {
			t.Fatalf("ledger entry %+v", reqs[0])
		}
		var runs []Run
		h.do("GET", "/_sim/runs", "", nil).json(t, &runs)
		if len(runs) != 1 || runs[0].ID != reqs[0].RunCreated || runs[0].Trigger != "API" {
			t.Fatalf("/_sim/runs: %+v", runs)
		}
	})
}

// TestPathFamilies: every run operation answers on the plural and the legacy singular
// paths, and they share the same runs.
func TestPathFamilies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{})
		for _, fam := range []struct{ run, runs string }{
			{"/projects/" + proj1 + "/runs", "/projects/" + proj1 + "/runs"},
			{"/project/" + proj1 + "/run", "/project/" + proj1 + "/runs"},
		} {
			r := h.do("POST", fam.run, tokA, nil)
			var c struct{ RunID, RunStatusURL string }
			r.json(t, &c)
			if r.status != 201 {
				t.Fatalf("POST %s: %d", fam.run, r.status)
			}
			if !strings.HasPrefix(c.RunStatusURL, base+fam.run+"/") {
				t.Errorf("runStatusUrl %q does not follow %s", c.RunStatusURL, fam.run)
			}
			if r := h.do("GET", c.RunStatusURL, tokA, nil); r.status != 200 {
				t.Fatalf("GET runStatusUrl: %d", r.status)
			}
			var list struct{ Runs []struct{ RunID string } }
			r = h.do("GET", fam.runs, tokA, nil)
			r.json(t, &list)
			if r.status != 200 || len(list.Runs) == 0 || list.Runs[0].RunID != c.RunID {
				t.Fatalf("GET %s: %d %s", fam.runs, r.status, r.body)
			}
			if r := h.do("DELETE", fam.run+"/"+c.RunID, tokA, nil); r.status != 204 {
				t.Fatalf("DELETE: %d", r.status)
			}
		}
		if r := h.do("GET", "/projects/"+proj1+"/runs", tokA, nil); !strings.Contains(string(r.body), "KILLED") {
			t.Fatal("runs of both families are not the same runs")
		}
		if r := h.do("GET", "/nothing/here", tokA, nil); r.status != 404 {
			t.Fatalf("unknown path: %d", r.status)
		}
		if r := h.do("PUT", "/projects/"+proj1+"/runs", tokA, nil); r.status != 404 {
			t.Fatalf("unknown method: %d", r.status)
		}
		if r := h.do("GET", "/projects/not-a-uuid/runs", tokA, nil); r.status != 400 {
			t.Fatalf("malformed project id: %d", r.status)
		}
	})
}

func TestRunProjectBody(t *testing.T) {
	tests := []struct {
		body string
		want int
	}{
		{``, 201},
		{`{}`, 201},
		{`null`, 201},
		{`{"dryRun":"false","updatePublishedResults":"true","useCachedSqlResults":false}`, 201},
		{`{"inputParams":{"a":1,"b":"x"},"updateCache":false}`, 201},
		{`{"viewId":"abc"}`, 201},
		{`{"notifications":[{"type":"ALL","includeSuccessScreenshot":"true","slackChannelIds":["C1"],"userIds":[],"groupIds":[]}]}`, 201},
		{`{"notifications":[{"type":"ALL","screenshotFormat":"pdf","subject":"s","body":"b","userIds":["u"]}]}`, 201},
		{`{"notifications":[{"type":"ALL","screenshotFormat":"gif","userIds":["u"]}]}`, 400},
		{`{"dryRun":"yes"}`, 400},
		{`{"dryRun":1}`, 400},
		{`{"inputParams":[1]}`, 400},
		{`{"inputParams":{"a":1},"viewId":"v"}`, 400},
		{`{"inputParams":{"a":1},"updateCache":true}`, 400},
		{`{"notifications":[{"type":"SOMETIMES"}]}`, 400},
		{`{"surprise":true}`, 400},
		{`{"dryRun":`, 400},
		{`[1,2]`, 400},
	}
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{Limits: Limits{Trigger: []Rule{}}})
		for _, tt := range tests {
			r := h.do("POST", "/projects/"+proj1+"/runs", tokA, tt.body)
			if r.status != tt.want {
				t.Errorf("body %s: %d %s, want %d", tt.body, r.status, r.body, tt.want)
			}
		}
		// Hex answers one notification entry per recipient: {type, recipientType, recipient}.
		r := h.do("POST", "/projects/"+proj1+"/runs", tokA, `{"notifications":[{"type":"FAILURE","userIds":["u1"],"slackChannelIds":["C1"]}]}`)
		var c struct {
			ProjectVersion json.Number
			Notifications  []notificationRecipient
		}
		r.json(t, &c)
		if c.ProjectVersion != "1" || len(c.Notifications) != 2 ||
			c.Notifications[0].RecipientType != "SLACK_CHANNEL" || c.Notifications[0].Recipient.ID != "C1" ||
			c.Notifications[1].RecipientType != "USER" || c.Notifications[1].Recipient.ID != "u1" || c.Notifications[1].Type != "FAILURE" {
			t.Fatalf("201 body %s", r.body)
		}
		before := len(h.sim.Runs())
		if r := h.do("POST", "/projects/"+proj1+"/runs", tokA, `{"dryRun":true}`); r.status != 201 || len(h.sim.Runs()) != before {
			t.Fatalf("dry run: %d, %d runs, want 201 and no new run", r.status, len(h.sim.Runs())-before)
		}
	})
}

// TestGetProjectRunsPaging walks pages with limit/offset and the returned URLs, and the
// filters.
func TestGetProjectRunsPaging(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{Limits: Limits{Trigger: []Rule{}, AllCalls: []Rule{}, Status: []Rule{}, Kernels: -1},
			Runs: Lifecycle{Pending: time.Second, Running: time.Hour}})
		var want []string
		for i := range 7 {
			_, id := h.trigger(tokA, proj1)
			want = append([]string{id}, want...) // newest first
			time.Sleep(time.Second)
			if i == 2 {
				run, _ := h.sim.AddRun(proj1, TriggerScheduled)
				want = append([]string{run.ID}, want...)
			}
		}
		h.trigger(tokA, proj2) // another project's run never shows
		var got []string
		next := base + "/projects/" + proj1 + "/runs?limit=3"
		pages := 0
		var page struct {
			Runs []struct {
				RunID, Status, RunTrigger string
			}
			NextPage, PreviousPage *string
		}
		for next != "" {
			r := h.do("GET", next, tokA, nil)
			page.NextPage, page.PreviousPage = nil, nil
			r.json(t, &page)
			if pages == 0 && page.PreviousPage != nil || pages > 0 && page.PreviousPage == nil {
				t.Fatalf("page %d previousPage %v", pages, page.PreviousPage)
			}
			for _, run := range page.Runs {
				got = append(got, run.RunID)
			}
			next = ""
			if page.NextPage != nil {
				next = *page.NextPage
			}
			pages++
		}
		if strings.Join(got, ",") != strings.Join(want, ",") || pages != 3 {
			t.Fatalf("%d pages: %v\nwant %v", pages, got, want)
		}
		count := func(q string) int {
			r := h.do("GET", "/projects/"+proj1+"/runs?"+q, tokA, nil)
			if r.status != 200 {
				t.Fatalf("%s: %d %s", q, r.status, r.body)
			}
			page.Runs = nil
			r.json(t, &page)
			return len(page.Runs)
		}
		h.do("DELETE", "/projects/"+proj1+"/runs/"+want[0], tokA, nil)
		for q, n := range map[string]int{"": 8, "runTriggerFilter=ALL": 8, "runTriggerFilter=API": 7, "runTriggerFilter=SCHEDULED": 1,
			"runTriggerFilter=APP_REFRESH": 0, "statusFilter=KILLED": 1, "statusFilter=RUNNING": 7, "statusFilter=RUNNING&runTriggerFilter=API": 6,
			"limit=100&offset=6": 2, "offset=50": 0, "limit=1": 1} {
			if got := count(q); got != n {
				t.Errorf("?%s: %d runs, want %d", q, got, n)
			}
		}
		for _, q := range []string{"limit=0", "limit=101", "limit=x", "offset=-1", "statusFilter=DONE", "runTriggerFilter=CRON"} {
			if r := h.do("GET", "/projects/"+proj1+"/runs?"+q, tokA, nil); r.status != 400 {
				t.Errorf("?%s: %d, want 400", q, r.status)
			}
		}
	})
}

func TestListProjectsPaging(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var projects []Project
		for i := range 7 {
			projects = append(projects, Project{ID: fmt.Sprintf("%08d-0000-4000-8000-000000000000", i), Title: fmt.Sprintf("P%d", i), Published: i != 4})
		}
		h := newHarness(t, Config{Projects: projects})
		var page struct {
			Values []struct {
				ID, Title       string
				LastPublishedAt *string
			}
			Pagination struct{ After, Before *string }
		}
		var titles []string
		q := "limit=3"
		for pages := 0; ; pages++ {
			r := h.do("GET", "/projects?"+q, tokA, nil)
			page.Pagination.After, page.Pagination.Before = nil, nil
			r.json(t, &page)
			for _, v := range page.Values {
				titles = append(titles, v.Title)
				if (v.LastPublishedAt == nil) != (v.Title == "P4") {
					t.Errorf("%s lastPublishedAt %v", v.Title, v.LastPublishedAt)
				}
			}
			if (pages > 0) != (page.Pagination.Before != nil) {
				t.Fatalf("page %d before %v", pages, page.Pagination.Before)
			}
			if page.Pagination.After == nil {
				break
			}
			q = "limit=3&after=" + url.QueryEscape(*page.Pagination.After)
		}
		if strings.Join(titles, ",") != "P0,P1,P2,P3,P4,P5,P6" {
			t.Fatalf("titles %v", titles)
		}
		r := h.do("GET", "/projects?limit=2&before="+url.QueryEscape(*page.Pagination.Before), tokA, nil)
		r.json(t, &page)
		if len(page.Values) != 2 || page.Values[0].Title != "P4" || page.Values[1].Title != "P5" {
			t.Fatalf("before the last page: %s", r.body)
		}
		if r := h.do("GET", "/projects?after=bogus", tokA, nil); r.status != 400 {
			t.Fatalf("bogus cursor: %d", r.status)
		}
		if r := h.do("GET", "/projects/"+projects[4].ID, tokA, nil); r.status != 200 || !strings.Contains(string(r.body), `"lastPublishedAt":null`) {
			t.Fatalf("GetProject unpublished: %d %s", r.status, r.body)
		}
		if r := h.do("GET", "/projects/"+proj1, tokA, nil); r.status != 404 {
			t.Fatalf("GetProject unknown: %d", r.status)
		}
	})
}

// TestOpenModeRegistry: without a registry any UUID is a published project, listed
// once seen.
func TestOpenModeRegistry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{})
		h.trigger(tokA, proj1)
		h.do("GET", "/projects/"+proj2, tokA, nil)
		var page struct{ Values []struct{ ID string } }
		h.do("GET", "/projects", tokA, nil).json(t, &page)
		if len(page.Values) != 2 || page.Values[0].ID != proj1 || page.Values[1].ID != proj2 {
			t.Fatalf("ListProjects: %+v", page)
		}
		if err := h.sim.SetProject(Project{ID: proj1, Published: false}); err != nil {
			t.Fatal(err)
		}
		if r, _ := h.trigger(tokA, proj1); r.status != 422 {
			t.Fatalf("after unpublishing: %d", r.status)
		}
	})
}
