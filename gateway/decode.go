package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// MaxBody is the largest request body the gateway reads (64 KiB): Hex's RunProject
// body is a few input params; anything larger is refused with 413.
const MaxBody = 64 << 10

// MaxKey is the longest Idempotency-Key accepted.
const MaxKey = 255

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// RunBody is Hex's RunProject request body, as the gateway accepts it: every field
// Hex documents, booleans also as the strings "true" and "false" (Hex's own examples
// send them so). Unknown fields are refused.
type RunBody struct {
	InputParams            map[string]any `json:"inputParams,omitempty"`
	DryRun                 bool           `json:"dryRun,omitempty"`
	Notifications          []Notification `json:"notifications,omitempty"`
	UpdatePublishedResults *bool          `json:"updatePublishedResults,omitempty"`
	UseCachedSQLResults    *bool          `json:"useCachedSqlResults,omitempty"`
	ViewID                 string         `json:"viewId,omitempty"`
}

// Notification is one entry of RunBody.Notifications.
type Notification struct {
	Type                     string   `json:"type"`
	IncludeSuccessScreenshot bool     `json:"includeSuccessScreenshot,omitempty"`
	SlackChannelIDs          []string `json:"slackChannelIds,omitempty"`
	UserIDs                  []string `json:"userIds,omitempty"`
	GroupIDs                 []string `json:"groupIds,omitempty"`
}

// TriggerBody is the body of POST /v1/schedules/{name}/trigger.
type TriggerBody struct {
	// Params override the schedule's params; the values of its matrix keys pick the
	// combination to run.
	Params map[string]any `json:"params,omitempty"`
}

// decodeError is a body or header the gateway refuses (400).
type decodeError struct{ msg string }

func (e *decodeError) Error() string { return e.msg }

func bad(format string, a ...any) error { return &decodeError{fmt.Sprintf(format, a...)} }

// flexBool reads a JSON boolean or the strings "true"/"false".
func flexBool(field string, raw json.RawMessage) (bool, error) {
	var b bool
	if err := json.Unmarshal(raw, &b); err == nil {
		return b, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		switch s {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, bad("%s must be true or false", field)
}

// object splits a JSON object into its fields, refusing anything else, duplicate keys
// and fields not in known.
func object(what string, data []byte, known ...string) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, bad("%s must be a JSON object", what)
	}
	out := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, bad("%s is not valid JSON: %v", what, err)
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, bad("%s is not valid JSON: %v", what, err)
		}
		if _, dup := out[key]; dup {
			return nil, bad("%s has %q twice", what, key)
		}
		if !contains(known, key) {
			return nil, bad("%s has an unknown field %q (known: %s)", what, key, strings.Join(known, ", "))
		}
		out[key] = raw
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, bad("%s is not valid JSON", what)
	}
	if _, err := dec.Token(); err == nil {
		return nil, bad("%s has data after the JSON object", what)
	}
	return out, nil
}

func contains(vs []string, v string) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// DecodeRunBody reads Hex's RunProject body (an empty body is an empty request). It
// refuses what Hex refuses: unknown fields, a viewId together with inputParams, an
// unknown notification type. The deprecated updateCache, true, is sent to Hex as
// updatePublishedResults, its current name.
func DecodeRunBody(data []byte) (RunBody, error) {
	var b RunBody
	if len(bytes.TrimSpace(data)) == 0 {
		return b, nil
	}
	fields, err := object("the body", data, "inputParams", "dryRun", "notifications", "updatePublishedResults",
		"useCachedSqlResults", "viewId", "updateCache")
	if err != nil {
		return b, err
	}
	updateCache := false
	for k, raw := range fields {
		if isNull(raw) {
			continue
		}
		switch k {
		case "inputParams":
			if b.InputParams, err = params("inputParams", raw); err != nil {
				return b, err
			}
		case "dryRun":
			if b.DryRun, err = flexBool(k, raw); err != nil {
				return b, err
			}
		case "updatePublishedResults", "useCachedSqlResults":
			v, err := flexBool(k, raw)
			if err != nil {
				return b, err
			}
			if k == "updatePublishedResults" {
				b.UpdatePublishedResults = &v
			} else {
				b.UseCachedSQLResults = &v
			}
		case "updateCache":
			if updateCache, err = flexBool(k, raw); err != nil {
				return b, err
			}
		case "viewId":
			if err := json.Unmarshal(raw, &b.ViewID); err != nil || strings.TrimSpace(b.ViewID) == "" {
				return b, bad("viewId must be a non-empty string")
			}
		case "notifications":
			if b.Notifications, err = notifications(raw); err != nil {
				return b, err
			}
		}
	}
	if updateCache {
		// Hex's deprecated name for updatePublishedResults (Airflow's and dagster's
		// providers send it, false unless asked).
		if b.UpdatePublishedResults != nil && !*b.UpdatePublishedResults {
			return b, bad("updateCache (deprecated: updatePublishedResults) is true while updatePublishedResults is false")
		}
		t := true
		b.UpdatePublishedResults = &t
	}
	if b.ViewID != "" && len(b.InputParams) > 0 {
		return b, bad("viewId cannot be combined with inputParams (Hex refuses it: a saved view brings its own inputs)")
	}
	return b, nil
}

// params reads an object of input names to JSON values; numbers keep their text.
func params(field string, raw json.RawMessage) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, bad("%s must be an object of input names to values", field)
	}
	for k := range m {
		if strings.TrimSpace(k) == "" {
			return nil, bad("%s has an empty input name", field)
		}
	}
	return m, nil
}

func notifications(raw json.RawMessage) ([]Notification, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, bad("notifications must be an array")
	}
	out := make([]Notification, 0, len(items))
	for i, item := range items {
		what := fmt.Sprintf("notifications[%d]", i)
		fields, err := object(what, item, "type", "includeSuccessScreenshot", "slackChannelIds", "userIds", "groupIds")
		if err != nil {
			return nil, err
		}
		var n Notification
		for k, v := range fields {
			if isNull(v) {
				continue
			}
			switch k {
			case "type":
				if json.Unmarshal(v, &n.Type) != nil || (n.Type != "SUCCESS" && n.Type != "FAILURE" && n.Type != "ALL") {
					return nil, bad("%s.type must be SUCCESS, FAILURE or ALL", what)
				}
			case "includeSuccessScreenshot":
				if n.IncludeSuccessScreenshot, err = flexBool(what+"."+k, v); err != nil {
					return nil, err
				}
			default:
				var ids []string
				if json.Unmarshal(v, &ids) != nil {
					return nil, bad("%s.%s must be an array of strings", what, k)
				}
				switch k {
				case "slackChannelIds":
					n.SlackChannelIDs = ids
				case "userIds":
					n.UserIDs = ids
				default:
					n.GroupIDs = ids
				}
			}
		}
		if n.Type == "" {
			return nil, bad("%s.type is required (SUCCESS, FAILURE or ALL)", what)
		}
		out = append(out, n)
	}
	return out, nil
}

// DecodeTriggerBody reads the body of POST /v1/schedules/{name}/trigger (an empty body
// runs the schedule as configured).
func DecodeTriggerBody(data []byte) (TriggerBody, error) {
	var b TriggerBody
	if len(bytes.TrimSpace(data)) == 0 {
		return b, nil
	}
	fields, err := object("the body", data, "params")
	if err != nil {
		return b, err
	}
	if raw, ok := fields["params"]; ok && !isNull(raw) {
		if b.Params, err = params("params", raw); err != nil {
			return b, err
		}
	}
	return b, nil
}

// ParseWait reads X-Hexcron-Wait: a Go duration ("30s", "2m") or whole seconds ("30");
// "" is -1 (the client's own wait).
func ParseWait(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return -1, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 || n > math.MaxInt32 {
			return 0, bad("X-Hexcron-Wait %q must be 0 or more seconds", v)
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, bad("X-Hexcron-Wait %q is not a duration (like 30s or 2m) nor whole seconds", v)
	}
	return d, nil
}

// CheckKey checks an Idempotency-Key: at most MaxKey printable ASCII characters.
func CheckKey(k string) error {
	if len(k) > MaxKey {
		return bad("Idempotency-Key is %d characters: at most %d", len(k), MaxKey)
	}
	for _, c := range []byte(k) {
		if c < 0x20 || c > 0x7e {
			return bad("Idempotency-Key must be printable ASCII")
		}
	}
	return nil
}

// requestHash identifies a request for its Idempotency-Key: what it runs (the project
// or the schedule, whatever path family named it) and its body, decoded and encoded
// again (so that spacing and key order do not make another request).
func requestHash(target string, body any) string {
	b, err := json.Marshal(body)
	if err != nil {
		b = []byte(fmt.Sprint(body))
	}
	var canon any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if dec.Decode(&canon) == nil {
		if c, err := json.Marshal(canon); err == nil {
			b = c
		}
	}
	sum := sha256.Sum256(append([]byte(target+"\n"), b...))
	return hex.EncodeToString(sum[:])
}

var errTooLarge = errors.New("request body too large")
