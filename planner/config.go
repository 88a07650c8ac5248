package planner

import (
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"hexcron/budget"
)

// Defaults applied when a key is absent.
const (
	DefaultBaseURL    = "https://app.hex.tech/api/v1"
	DefaultMaxRunning = 20
	DefaultWindow     = 15 * time.Minute
	DefaultTimeout    = 30 * time.Minute
	DefaultOverlap    = "skip"
	DefaultCatchup    = time.Hour
	// DefaultRetention is how long the database keeps terminal slots (state.retention).
	DefaultRetention = 90 * 24 * time.Hour
	// MinRetention is the shortest retention other than 0 (which keeps everything):
	// short values are for tests.
	MinRetention = time.Minute
	// MaxRetention bounds state.retention (100 years).
	MaxRetention = 100 * 365 * 24 * time.Hour
)

// DefaultTriggers are Hex's RunProject caps: 20 per minute and 60 per hour
// (budget.DefaultRules, the ones the Hex client defaults to).
func DefaultTriggers() []Rule { return budget.DefaultRules() }

// DefaultReads is the budget for status and list calls: 30 per minute.
func DefaultReads() []Rule { return []Rule{{Limit: 30, Per: time.Minute}} }

// Overlap policies: what to do when a slot fires while the schedule's previous run is
// still going.
var overlapPolicies = []string{"skip", "queue", "replace", "allow"}

// Notify "on" values and the Hex notification type each maps to.
var notifyOn = map[string]string{"success": "SUCCESS", "failure": "FAILURE", "all": "ALL"}

// Config is a validated hexcron config with every default applied.
type Config struct {
	File      string         // the file name the config was parsed from
	Hex       Hex            // where Hex is and where the token file is
	Budget    Budget         // the Hex user's caps
	State     State          // where the database is and what it keeps
	Location  *time.Location // defaults.timezone (UTC when absent): plan hours are shown in it
	Schedules []Schedule     // in file order
	Gateway   *Gateway       // the trigger gateway; nil when the file has no gateway section
	Warnings  []Problem      // things that are allowed but probably not meant
}

// Hex says where the Hex API is.
type Hex struct {
	BaseURL   string // Hex's API root as SCHEME://HOST/api/v1 (see NormalizeBaseURL)
	TokenFile string // optional; the token comes first from $CREDENTIALS_DIRECTORY/hex-token, then $HEX_API_TOKEN
}

// State says where the database is and what it keeps.
type State struct {
	// URL is a postgres:// URL (without a password) of a database several machines
	// share; "" means the SQLite file (--db, or the default path).
	URL string
	// Retention is how long terminal slots are kept after they ended (and the ledger
	// rows no rule can count any more are pruned with them); 0 keeps everything.
	Retention time.Duration
}

// Budget holds the caps of the Hex user hexcron triggers as.
type Budget struct {
	Triggers   []Rule        // RunProject caps
	Reads      []Rule        // status and list call caps
	MinSpacing time.Duration // no two triggers closer than this
	MaxRunning int           // runs in flight at once

	// Skew and MaxAttempt are the occupancy model admission uses (budget.Budget):
	// not YAML keys; Parse sets budget.DefaultSkew and budget.DefaultMaxAttempt.
	Skew       time.Duration
	MaxAttempt time.Duration
}

// defaultBudget is the budget before the config's budget section: Hex's caps and the
// Hex client's occupancy model.
func defaultBudget() Budget {
	return Budget{Triggers: DefaultTriggers(), Reads: DefaultReads(), MaxRunning: DefaultMaxRunning,
		Skew: budget.DefaultSkew, MaxAttempt: budget.DefaultMaxAttempt}
}

// Trigger is the admission math for the trigger caps: the rules, min_spacing and the
// occupancy model. The Hex client admits with it and Plan places firings by it.
func (b Budget) Trigger() budget.Budget {
	return budget.Budget{Rules: slices.Clone(b.Triggers), MinSpacing: b.MinSpacing, Skew: b.Skew, MaxAttempt: b.MaxAttempt}
}

// Rule is one cap: at most Limit-Reserve calls in any window of length Per
// (budget.Rule; Effective is Limit-Reserve).
type Rule = budget.Rule

// Notify is one Hex notification of a run's outcome.
type Notify struct {
	On                       string // success | failure | all
	SlackChannels            []string
	UserIDs                  []string
	GroupIDs                 []string
	IncludeSuccessScreenshot bool
}

// HexType is the notification type Hex's RunProject expects: SUCCESS, FAILURE or ALL.
func (n Notify) HexType() string { return notifyOn[n.On] }

// Schedule is one configured schedule with the defaults applied.
type Schedule struct {
	Name     string // a slug, unique in the file
	Project  string // the Hex project id (a UUID)
	Cron     string // as written
	Location *time.Location
	Window   time.Duration // a firing may be planned this much after its nominal instant
	Timeout  time.Duration // a run still going after this is cancelled
	Overlap  string        // skip | queue | replace | allow
	Catchup  time.Duration // after downtime, the last missed slot fires if this recent
	Priority int           // higher is placed first when not everything fits

	Params                 map[string]any      // Hex inputParams (defaults.params merged under)
	UseCachedSQL           *bool               // nil: Hex's default
	UpdatePublishedResults *bool               // nil: Hex's default
	Notify                 []Notify            // nil: none
	Matrix                 map[string][]string // one firing per combination of values
	View                   string              // Hex viewId: run this saved view (never with Params or Matrix)

	Line int // where the schedule starts in the file

	spec *cronSpec
}

// Between returns the schedule's nominal instants in [from, to), ascending, with the
// DST rule applied (a slot in a skipped hour fires at the transition; a slot in a
// repeated hour fires once, at its first occurrence).
func (s *Schedule) Between(from, to time.Time) []time.Time {
	return s.spec.between(s.Location, from, to)
}

// Prev returns the most recent nominal instant strictly before before, searching back
// at most eight years; ok is false when there is none.
func (s *Schedule) Prev(before time.Time) (t time.Time, ok bool) {
	return s.spec.prev(s.Location, before)
}

// Fanout returns the matrix combinations in a fixed order (keys sorted, values in file
// order, the first key varying slowest); a schedule without a matrix has one, nil. It
// builds nothing for a matrix of more than MaxFanout combinations (which validation
// refuses) and returns nil.
func (s *Schedule) Fanout() []map[string]string {
	if len(s.Matrix) == 0 {
		return []map[string]string{nil}
	}
	if n := s.FanoutCount(); n > MaxFanout || n < 1 {
		return nil
	}
	keys := slices.Sorted(maps.Keys(s.Matrix))
	out := []map[string]string{{}}
	for _, k := range keys {
		var next []map[string]string
		for _, m := range out {
			for _, v := range s.Matrix[k] {
				c := maps.Clone(m)
				c[k] = v
				next = append(next, c)
			}
		}
		out = next
	}
	return out
}

// Firings returns one firing per matrix combination for a nominal instant, with
// Release = nominal and Deadline = nominal + Window.
func (s *Schedule) Firings(nominal time.Time) []Firing {
	fan := s.Fanout()
	out := make([]Firing, len(fan))
	for i, m := range fan {
		out[i] = Firing{
			Schedule: s.Name,
			Slot:     SlotKey(s.Name, nominal, m),
			Nominal:  nominal,
			Matrix:   m,
			Priority: s.Priority,
			Release:  nominal,
			Deadline: nominal.Add(s.Window),
		}
	}
	return out
}

// InputParams returns the Hex inputParams for one firing: Params with the firing's
// matrix values set on top.
func (s *Schedule) InputParams(matrix map[string]string) map[string]any {
	if len(s.Params) == 0 && len(matrix) == 0 {
		return nil
	}
	out := make(map[string]any, len(s.Params)+len(matrix))
	maps.Copy(out, s.Params)
	for k, v := range matrix {
		out[k] = v
	}
	return out
}

// Schedule returns the schedule with that name, or nil.
func (c *Config) Schedule(name string) *Schedule {
	for i := range c.Schedules {
		if c.Schedules[i].Name == name {
			return &c.Schedules[i]
		}
	}
	return nil
}

// SlotKey identifies one firing: "<schedule>@<nominal in UTC RFC 3339>", plus
// "[k1=v1,k2=v2]" with keys sorted for a matrix combination.
func SlotKey(schedule string, nominal time.Time, matrix map[string]string) string {
	var b strings.Builder
	b.WriteString(schedule)
	b.WriteByte('@')
	b.WriteString(nominal.UTC().Format(time.RFC3339))
	if len(matrix) > 0 {
		keys := make([]string, 0, len(matrix))
		for k := range matrix {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('[')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(k)
			b.WriteByte('=')
			b.WriteString(matrix[k])
		}
		b.WriteByte(']')
	}
	return b.String()
}
