package planner

import (
	"strconv"
	"strings"
	"time"
)

// FormatDuration writes d as durations are written in a config: without zero units
// (1m, 1h30m, 45s rather than 1m0s, 1h30m0s), whole days of 48h or more as days (90d,
// 2d12h), rounded to the second from one minute up and to the millisecond below
// (4m10s, 1.5s, 350ms). It is the one way hexcron shows a duration to people: rules, shifts,
// elapsed times, retention.
func FormatDuration(d time.Duration) string {
	if d < 0 {
		return "-" + FormatDuration(-d)
	}
	if d < time.Minute {
		return d.Round(time.Millisecond).String()
	}
	d = d.Round(time.Second)
	var days string
	if d >= 48*time.Hour {
		n := d / (24 * time.Hour)
		days, d = strconv.FormatInt(int64(n), 10)+"d", d-n*24*time.Hour
		if d == 0 {
			return days
		}
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return days + s
}
