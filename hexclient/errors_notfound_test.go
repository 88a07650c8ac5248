package hexclient

import (
	"net/http"
	"strings"
	"testing"
)

// Hex documents the 422 {invalid, notFound} form without fixing the element type of
// notFound: both bare names and objects must name the input.
func TestNotFoundEntriesAsNamesOrObjects(t *testing.T) {
	for _, body := range []string{
		`{"invalid":[],"notFound":["regoin"],"traceId":"t1"}`,
		`{"invalid":[],"notFound":[{"paramName":"regoin"}],"traceId":"t1"}`,
	} {
		e := newHTTPError("run project", 422, http.Header{}, []byte(body), func(s string) string { return s })
		if len(e.NotFound) != 1 || e.NotFound[0].ParamName != "regoin" {
			t.Errorf("%s: NotFound = %+v, want the input regoin", body, e.NotFound)
		}
		if !strings.Contains(e.Error(), `unknown input "regoin"`) || e.TraceID != "t1" {
			t.Errorf("%s: error %q (trace %q) does not name the input and trace", body, e.Error(), e.TraceID)
		}
	}
}
