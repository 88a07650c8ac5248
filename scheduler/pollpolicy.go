package scheduler

import "time"

// pollInterval is how long to wait between two status polls of a run of this age: runs
// are polled often while young (most finish quickly) and less often as they age, so
// that a few long runs do not eat the read budget (30 status calls a minute by default).
func pollInterval(age time.Duration) time.Duration {
	switch {
	case age < 2*time.Minute:
		return 15 * time.Second
	case age < 10*time.Minute:
		return 30 * time.Second
	case age < time.Hour:
		return time.Minute
	default:
		return 5 * time.Minute
	}
}

// firstPollDelay is how long after the trigger the first status poll happens.
const firstPollDelay = 10 * time.Second
