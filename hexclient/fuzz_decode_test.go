package hexclient

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// fuzzToken stands for the Hex token in error bodies: it must never survive into an
// *APIError.
const fuzzToken = "hxtp_FuzzSecretToken0123456789"

// FuzzHeaderWait: whatever the three headers say, the wait is in [0, MaxWait], zero
// when not ok, and Retry-After wins whenever it parses.
func FuzzHeaderWait(f *testing.F) {
	now := int64(1772366400) // 2026-03-01T12:00:00Z
	f.Add("30", "", "", now)
	f.Add("", "12.5", "", now)
	f.Add("", "", "1772366460", now)
	f.Add("Sun, 01 Mar 2026 11:00:00 GMT", "5", "", now)
	f.Add("soon", "-3", "1e400", now)
	f.Add("", "NaN", "Inf", now)
	f.Add("", "", "99999999999999999999", now)
	f.Fuzz(func(t *testing.T, retryAfter, reset, xReset string, nowUnix int64) {
		now := time.Unix(nowUnix%(1<<40), 0)
		h := http.Header{}
		h.Set("Retry-After", retryAfter)
		h.Set("RateLimit-Reset", reset)
		h.Set("X-RateLimit-Reset", xReset)
		d, ok := HeaderWait(h, now)
		if d < 0 || d > MaxWait {
			t.Fatalf("HeaderWait %v out of [0, %v]", d, MaxWait)
		}
		if !ok && d != 0 {
			t.Fatalf("HeaderWait not ok but %v", d)
		}
		if ra, raOK := ParseRetryAfter(h.Get("Retry-After"), now); raOK && (!ok || d != ra) {
			t.Fatalf("Retry-After %q gives %v but HeaderWait %v,%v", retryAfter, ra, d, ok)
		}
		_, r1 := ParseRateLimitReset(h.Get("RateLimit-Reset"), now)
		_, r2 := ParseRateLimitReset(h.Get("X-RateLimit-Reset"), now)
		_, r0 := ParseRetryAfter(h.Get("Retry-After"), now)
		if ok != (r0 || r1 || r2) {
			t.Fatalf("HeaderWait ok=%v but parts %v %v %v", ok, r0, r1, r2)
		}
	})
}

// FuzzResetInstant: an absolute instant (HTTP-date in Retry-After, unix seconds in a
// reset header) offset seconds from now waits exactly offset, 0 when in the past, and
// MaxWait when further than the cap.
func FuzzResetInstant(f *testing.F) {
	f.Add(int64(1772366400), int64(90))
	f.Add(int64(1772366400), int64(-90))
	f.Add(int64(1772366400), int64(0))
	f.Add(int64(1772366400), int64(3600))
	f.Add(int64(1772366400), int64(3601))
	f.Add(int64(1772366400), int64(-1772366400))
	f.Add(int64(100000000), int64(1<<40))
	f.Fuzz(func(t *testing.T, nowUnix, offset int64) {
		// Keep both instants in years 1973..9999, where both formats can express them.
		const lo, hi = 100_000_000, 253402300799
		if nowUnix < lo || nowUnix > hi || offset < lo-nowUnix || offset > hi-nowUnix {
			return
		}
		now := time.Unix(nowUnix, 0)
		at := now.Add(time.Duration(offset) * time.Second)
		want := time.Duration(offset) * time.Second
		switch {
		case offset <= 0:
			want = 0
		case want > MaxWait:
			want = MaxWait
		}
		date := at.UTC().Format(http.TimeFormat)
		if d, ok := ParseRetryAfter(date, now); !ok || d != want {
			t.Fatalf("Retry-After %q at %v: %v,%v, want %v", date, now.UTC(), d, ok, want)
		}
		unix := strconv.FormatInt(at.Unix(), 10)
		if d, ok := ParseRateLimitReset(unix, now); !ok || d != want {
			t.Fatalf("reset %q at %v: %v,%v, want %v", unix, now.UTC(), d, ok, want)
		}
	})
}

// FuzzDecodeErrorBody: any error body, in Hex's JSON form, the 422 form or plain
// text, gives an *APIError whose texts are bounded, free of control characters and of
// the token, and that keeps the 422 form's parameter names.
func FuzzDecodeErrorBody(f *testing.F) {
	f.Add(422, []byte(`{"invalid":[{"paramName":"region","dataType":"STRING","inputCellType":"DROPDOWN"}],"notFound":[{"paramName":"regoin"}],"traceId":"t-1"}`))
	f.Add(422, []byte(`{"reason":"Project has not been published","traceId":"t-2"}`))
	f.Add(401, []byte(`Unauthorized`))
	f.Add(502, []byte("<html><body>Bad Gateway</body></html>\n"))
	f.Add(429, []byte(`{"reason":"Too many requests","details":"retry later","traceId":12}`))
	f.Add(400, []byte(`{"reason":"bad token `+fuzzToken+`","details":"`+strings.Repeat("x", 290)+fuzzToken+`"}`))
	f.Add(500, []byte(`{"reason":null,"details":true,"invalid":"nope"}`))
	f.Add(404, []byte(``))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		redact := func(s string) string { return strings.ReplaceAll(s, fuzzToken, "[redacted]") }
		h := http.Header{}
		h.Set("x-trace-id", "hdr-trace")
		e := newHTTPError("run project", status, h, body, redact)
		if e == nil || e.Status != status {
			t.Fatalf("error %+v for status %d", e, status)
		}
		check := func(field, s string, max int) {
			if len(s) > max+len("…") {
				t.Fatalf("%s is %d bytes (max %d)", field, len(s), max)
			}
			for _, r := range s {
				if r < 0x20 || r == 0x7f {
					t.Fatalf("%s has control character %q: %q", field, r, s)
				}
			}
			if strings.Contains(s, fuzzToken) {
				t.Fatalf("%s contains the token: %q", field, s)
			}
		}
		check("Reason", e.Reason, 300)
		check("Details", e.Details, 300)
		check("TraceID", e.TraceID, 100)
		for _, p := range append(append([]InvalidParam{}, e.Invalid...), e.NotFound...) {
			check("ParamName", p.ParamName, 100)
		}
		msg := e.Error()
		if strings.Contains(msg, fuzzToken) {
			t.Fatalf("Error() contains the token: %q", msg)
		}
		if e.TraceID == "" {
			t.Fatal("the x-trace-id header was not used")
		}
		var w struct {
			Invalid  []json.RawMessage `json:"invalid"`
			NotFound []json.RawMessage `json:"notFound"`
		}
		trimmed := strings.TrimSpace(string(body))
		switch {
		case json.Unmarshal(body, &w) == nil:
			if len(e.Invalid) != len(w.Invalid) || len(e.NotFound) != len(w.NotFound) {
				t.Fatalf("422 form: %d/%d invalid, %d/%d not found kept", len(e.Invalid), len(w.Invalid), len(e.NotFound), len(w.NotFound))
			}
			if len(e.Invalid)+len(e.NotFound) > 0 && e.Reason == "" {
				t.Fatal("422 form without a reason")
			}
		case trimmed != "" && utf8.ValidString(trimmed):
			if e.Reason == "" {
				t.Fatalf("plain-text body %q lost", trimmed)
			}
		}
	})
}

// FuzzDecodeCreated: RunProject's 201 body decodes only with a run id, which it keeps
// exactly; a runs page never holds more runs than the body listed.
func FuzzDecodeCreated(f *testing.F) {
	f.Add([]byte(`{"projectId":"5a8591dd-4039-49df-9202-96385ba3eff8","projectVersion":3,"runId":"r-1","runUrl":"https://app.hex.tech/x","runStatusUrl":"http://127.0.0.1/api/v1/projects/p/runs/r-1","traceId":"t"}`))
	f.Add([]byte(`{"runId":42,"projectVersion":"7"}`))
	f.Add([]byte(`{"runId":null}`))
	f.Add([]byte(`{"runs":[{"runId":"a","status":"RUNNING"},{"status":"COMPLETED"},{"runId":7,"elapsedTime":"12"}],"nextPage":"http://127.0.0.1/api/v1/projects/p/runs?offset=25","traceId":"t"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var raw map[string]json.RawMessage
		rawOK := json.Unmarshal(body, &raw) == nil
		if c, err := decodeRunCreated(body); err == nil {
			if c.RunID == "" {
				t.Fatal("decoded a created run without a run id")
			}
			var id string
			// encoding/json matches keys case-insensitively (the last match wins), so
			// compare only when "runId" is the one spelling present.
			if rawOK && onlySpelling(raw, "runId") && json.Unmarshal(raw["runId"], &id) == nil && id != c.RunID {
				t.Fatalf("run id %q decoded as %q", id, c.RunID)
			}
		}
		if p, err := decodeRunsPage(body); err == nil && rawOK && onlySpelling(raw, "runs") {
			var runs []json.RawMessage
			_ = json.Unmarshal(raw["runs"], &runs)
			if len(p.Runs) > len(runs) {
				t.Fatalf("page has %d runs, body %d", len(p.Runs), len(runs))
			}
		}
	})
}

// onlySpelling reports whether key is in raw and no other key equals it ignoring case.
func onlySpelling(raw map[string]json.RawMessage, key string) bool {
	if _, ok := raw[key]; !ok {
		return false
	}
	for k := range raw {
		if k != key && strings.EqualFold(k, key) {
			return false
		}
	}
	return true
}

// TestErrorTokenAcrossClip: a token that straddles the point where a long reason is
// clipped must not leak its first characters (found while writing FuzzDecodeErrorBody).
func TestErrorTokenAcrossClip(t *testing.T) {
	redact := func(s string) string { return strings.ReplaceAll(s, fuzzToken, "[redacted]") }
	for _, pad := range []int{280, 290, 295, 299} {
		long := strings.Repeat("x", pad) + fuzzToken
		body := `{"reason":"` + long + `","details":"` + long + `","invalid":[{"paramName":"` + strings.Repeat("y", pad-200) + fuzzToken + `"}]}`
		e := newHTTPError("run project", 422, http.Header{}, []byte(body), redact)
		for _, s := range []string{e.Reason, e.Details, e.Invalid[0].ParamName, e.Error()} {
			if strings.Contains(s, "hxtp_") {
				t.Errorf("pad %d: token prefix leaked: %q", pad, s[len(s)-30:])
			}
		}
	}
}
