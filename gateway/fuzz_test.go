package gateway

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// FuzzDecodeRunBody: any body either decodes or is refused with a *decodeError (a 400
// with a reason, never a panic nor another error); what decodes encodes to a body that
// decodes to the same request with the same hash.
func FuzzDecodeRunBody(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `{"inputParams": {"a": 1, "b": "x", "c": [1, {"d": null}]}}`,
		`{"dryRun": "true", "useCachedSqlResults": false, "updatePublishedResults": "false"}`,
		`{"notifications": [{"type": "ALL", "includeSuccessScreenshot": "true", "slackChannelIds": ["C1"], "userIds": [], "groupIds": null}]}`,
		`{"viewId": "v-1"}`, `{"viewId": "v", "inputParams": {"a": 1}}`, `{"updateCache": false}`, `{"inputParams": {"": 1}}`,
		`{"inputParams": 12}`, `{"a":1,"a":2}`, `{"dryRun": true} x`, `{"inputParams": {"n": 1e400}}`, "{\"inputParams\": {\"k\": \"\xff\"}}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := DecodeRunBody(data)
		if err != nil {
			var de *decodeError
			if !errors.As(err, &de) || de.msg == "" {
				t.Fatalf("error %v (%T) is not a decode error with a reason", err, err)
			}
			return
		}
		enc, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("a decoded body does not encode: %v (%+v)", err, b)
		}
		again, err := DecodeRunBody(enc)
		if err != nil {
			t.Fatalf("the encoded body %s is refused: %v", enc, err)
		}
		if !reflect.DeepEqual(normal(t, b), normal(t, again)) {
			t.Fatalf("round trip changed the body:\n%+v\n%+v", b, again)
		}
		if requestHash("p", b) != requestHash("p", again) {
			t.Fatal("round trip changed the hash")
		}
	})
}

// normal is b as generic JSON (numbers as text), for comparison.
func normal(t *testing.T, b RunBody) any {
	enc, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	dec := json.NewDecoder(strings.NewReader(string(enc)))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// FuzzDecodeHeaders: the trigger body, X-Hexcron-Wait and Idempotency-Key either pass
// or are refused with a reason; a wait that passes is never negative.
func FuzzDecodeHeaders(f *testing.F) {
	f.Add([]byte(`{"params": {"region": "emea"}}`), "30s", "build-7")
	f.Add([]byte(`{"params": null}`), "12", "")
	f.Add([]byte(`{"params": 1}`), "-1s", "\x00")
	f.Add([]byte(`{"param": {}}`), "9223372036854775807", strings.Repeat("k", 300))
	f.Fuzz(func(t *testing.T, body []byte, wait, key string) {
		var de *decodeError
		if _, err := DecodeTriggerBody(body); err != nil && !errors.As(err, &de) {
			t.Fatalf("trigger body error %v (%T)", err, err)
		}
		if d, err := ParseWait(wait); err != nil && !errors.As(err, &de) {
			t.Fatalf("wait error %v (%T)", err, err)
		} else if err == nil && d < 0 && !(d == -1 && strings.TrimSpace(wait) == "") {
			t.Fatalf("wait %q gave %s", wait, d)
		}
		if err := CheckKey(key); err == nil {
			for _, c := range []byte(key) {
				if c < 0x20 || c > 0x7e {
					t.Fatalf("key %q accepted", key)
				}
			}
			if len(key) > MaxKey {
				t.Fatalf("key of %d accepted", len(key))
			}
		}
	})
}
