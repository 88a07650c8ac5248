package hexclient

import (
	"sync"
	"time"
)

// Decrease is the factor applied to every effective limit on a 429 the budget did
// not predict (probably another client of this Hex user).
const Decrease = 0.7

// adaptive holds the effective usable count of each trigger rule: multiplicative
// decrease on an unpredicted 429 (at most once per shortest rule window, so one
// burst of 429s counts once), and slow additive recovery: each rule regains a tenth
// of its configured usable count (at least 1) per rule window without a 429. Never
// above the configured Limit-Reserve, never below 1.
type adaptive struct {
	mu      sync.Mutex
	rules   []Rule
	eff     []int
	since   []time.Time // start of the current recovery step, per rule
	lastCut time.Time
	minPer  time.Duration
	episode bool // shrunk and not yet fully recovered
}

func newAdaptive(rules []Rule) *adaptive {
	a := &adaptive{rules: rules, eff: make([]int, len(rules)), since: make([]time.Time, len(rules))}
	for i, r := range rules {
		a.eff[i] = r.Effective()
		if a.minPer == 0 || r.Per < a.minPer {
			a.minPer = r.Per
		}
	}
	return a
}

// usable returns the effective usable counts at now.
func (a *adaptive) usable(now time.Time) []int {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.recoverLocked(now)
	return append([]int(nil), a.eff...)
}

func (a *adaptive) recoverLocked(now time.Time) {
	full := true
	for i, r := range a.rules {
		if a.eff[i] < r.Effective() && r.Per > 0 {
			if k := int(now.Sub(a.since[i]) / r.Per); k > 0 {
				step := max(1, r.Effective()/10)
				a.eff[i] = min(r.Effective(), a.eff[i]+k*step)
				a.since[i] = a.since[i].Add(time.Duration(k) * r.Per)
			}
		}
		if a.eff[i] < r.Effective() {
			full = false
		}
	}
	if full {
		a.episode = false
	}
}

// decrease shrinks every effective limit ×Decrease at now, unless it already did so
// within the shortest rule window. It reports whether this starts a new episode (the
// limits were at full strength), which deserves one WARN.
func (a *adaptive) decrease(now time.Time) (newEpisode bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.recoverLocked(now)
	newEpisode = !a.episode
	a.episode = true
	if !newEpisode && now.Sub(a.lastCut) < a.minPer {
		return false
	}
	a.lastCut = now
	for i := range a.rules {
		a.eff[i] = max(1, int(float64(a.eff[i])*Decrease))
		a.since[i] = now
	}
	return newEpisode
}
