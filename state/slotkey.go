package state

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// ParseSlotKey splits a slot key (`<schedule>@<nominal UTC RFC3339>`, optionally followed
// by `[k1=v1,k2=v2]` for matrix fan-out or by `+manual` for `hexcron trigger`) into a Slot
// with Key, Schedule, Nominal, Matrix and Kind set (KindScheduled or KindManual).
func ParseSlotKey(key string) (Slot, error) {
	bad := func(why string) (Slot, error) {
		return Slot{}, fmt.Errorf("parse slot key %q: %w: %s", key, ErrBadSlotKey, why)
	}
	schedule, rest, ok := strings.Cut(key, "@")
	if !ok || schedule == "" {
		return bad("want <schedule>@<RFC3339 time>")
	}
	s := Slot{Key: key, Schedule: schedule, Kind: KindScheduled}
	ts := rest
	switch {
	case strings.HasSuffix(rest, "+manual"):
		ts = strings.TrimSuffix(rest, "+manual")
		s.Kind = KindManual
	case strings.HasSuffix(rest, "]"):
		i := strings.IndexByte(rest, '[')
		if i < 0 {
			return bad("']' without '['")
		}
		ts = rest[:i]
		m := map[string]string{}
		for _, kv := range strings.Split(rest[i+1:len(rest)-1], ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return bad(fmt.Sprintf("matrix entry %q is not k=v", kv))
			}
			m[k] = v
		}
		s.Matrix = m
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return bad(fmt.Sprintf("time %q is not RFC3339", ts))
	}
	s.Nominal = t.UTC()
	return s, nil
}

// matrixText is the stored form of matrix values: canonical JSON (keys sorted), or ""
// when there are none.
func matrixText(m map[string]string) string {
	if len(m) == 0 {
		return ""
	}
	b, err := json.Marshal(m) // map keys are sorted: canonical
	if err != nil {
		panic(err) // a map[string]string always marshals
	}
	return string(b)
}

func parseMatrixText(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("matrix %q: %w", s, err)
	}
	return m, nil
}

// MatrixSuffix formats matrix values as they appear in a slot key: `[k1=v1,k2=v2]` with
// keys sorted, or "" when there are none.
func MatrixSuffix(m map[string]string) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return "[" + strings.Join(parts, ",") + "]"
}
