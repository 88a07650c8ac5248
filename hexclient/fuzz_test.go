package hexclient

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzRetryAfter: header parsing never panics, never returns a negative wait or one
// above MaxWait, and HeaderWait agrees with its parts.
func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"120", "0", "Sun, 01 Mar 2026 12:01:30 GMT", "-1", "1e9", "99999999999999999999", "soon", ""} {
		f.Add(s, int64(1772366400))
	}
	f.Fuzz(func(t *testing.T, v string, nowUnix int64) {
		now := time.Unix(nowUnix%(1<<40), 0)
		for _, parse := range []func(string, time.Time) (time.Duration, bool){ParseRetryAfter, ParseRateLimitReset} {
			d, ok := parse(v, now)
			if d < 0 || d > MaxWait {
				t.Fatalf("wait %v for %q out of [0, %v]", d, v, MaxWait)
			}
			if !ok && d != 0 {
				t.Fatalf("not ok but wait %v", d)
			}
		}
		h := http.Header{}
		h.Set("Retry-After", v)
		d1, ok1 := HeaderWait(h, now)
		d2, ok2 := ParseRetryAfter(v, now)
		if ok2 && (d1 != d2 || !ok1) {
			t.Fatalf("HeaderWait %v,%v disagrees with ParseRetryAfter %v,%v", d1, ok1, d2, ok2)
		}
	})
}

// FuzzDecodeRun: decoding any body never panics; what decodes keeps its run id, and
// an unknown status is never terminal.
// runIDSpellings counts the keys of raw that encoding/json would decode into runId.
func runIDSpellings(raw map[string]json.RawMessage) int {
	n := 0
	for k := range raw {
		if strings.EqualFold(k, "runId") {
			n++
		}
	}
	return n
}

func FuzzDecodeRun(f *testing.F) {
	f.Add([]byte(`{"projectId":"p","projectVersion":3,"runId":"r","runUrl":"u","status":"COMPLETED","runTrigger":"API","startTime":"2026-03-01T12:00:00Z","endTime":null,"elapsedTime":12.5,"traceId":"t"}`))
	f.Add([]byte(`{"runId":"r","projectVersion":"7","status":"WHATEVER"}`))
	f.Add([]byte(`{"runs":[{"runId":"a"}],"nextPage":null,"previousPage":null,"traceId":"t"}`))
	f.Add([]byte(`Unauthorized`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if r, err := decodeRunStatus(body); err == nil {
			if r.RunID == "" {
				t.Fatal("decoded a run without a run id")
			}
			if r.Status.Terminal() && !r.Status.Known() {
				t.Fatalf("unknown status %q terminal", r.Status)
			}
			if r.Elapsed < 0 {
				t.Fatalf("negative elapsed %v", r.Elapsed)
			}
			var raw map[string]json.RawMessage
			// encoding/json matches keys case-insensitively: compare only when runId is
			// the one spelling of the key in the body.
			if json.Unmarshal(body, &raw) == nil && runIDSpellings(raw) == 1 {
				var id string
				if json.Unmarshal(raw["runId"], &id) == nil && id != "" && id != r.RunID {
					t.Fatalf("run id %q decoded as %q", id, r.RunID)
				}
			}
		}
		if p, err := decodeRunsPage(body); err == nil {
			for _, r := range p.Runs {
				if r.RunID == "" {
					t.Fatal("page kept a run without a run id")
				}
			}
		}
		decodeRunCreated(body)
		decodeProjectsPage(body)
		newHTTPError("fuzz", 500, http.Header{}, body, func(s string) string { return s })
	})
}
