package planner

import (
	"cmp"
	"container/heap"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"hexcron/budget"
)

// Firing is one trigger to make: one nominal instant of a schedule (and one matrix
// combination), with the interval it may be planned in.
type Firing struct {
	Schedule string            // the schedule's name
	Slot     string            // SlotKey(Schedule, Nominal, Matrix)
	Nominal  time.Time         // the cron instant
	Matrix   map[string]string // nil unless the schedule has a matrix
	Priority int               // the schedule's priority
	Release  time.Time         // earliest allowed planned instant (Nominal, or later)
	Deadline time.Time         // latest allowed planned instant (Nominal + Window)
	Planned  time.Time         // set by Plan: whole seconds in [Release, Deadline]
}

// Shift is how much later than nominal the firing is planned.
func (f Firing) Shift() time.Duration { return f.Planned.Sub(f.Nominal) }

// Input is what Plan needs besides the config. Time is never read from a clock.
type Input struct {
	From    time.Time     // start of the horizon
	Horizon time.Duration // nominal instants in [From, From+Horizon) are planned

	// Past are trigger attempts already made (the ledger's, from every process, with
	// their Sent and Done times; Done is zero while one is in flight). Each occupies
	// every rule's windows from Sent until budget.Budget.Until (Done plus the skew
	// margin, or Sent plus MaxAttempt plus skew while in flight) and counts for
	// min_spacing. Planning starts at the later of From and the latest Sent.
	Past []budget.Attempt

	// OpenWindows also plans firings whose nominal instant is before From but whose
	// window is still open at From; their Release is From.
	OpenWindows bool

	// Skip reports slots already handled; they are not planned. May be nil.
	Skip func(slot string) bool

	// Extra are firings made by the caller (catch-up) with Release and Deadline set.
	// A generated firing with the same slot is replaced by the extra one.
	Extra []Firing
}

// Unplaced is a firing that cannot be placed in its window under the caps.
type Unplaced struct {
	Firing
	Reason    string   // why, in words
	Competing []string // schedules planned in the firing's window, busiest first (at most 10)
}

// Hour is the plan's usage in one hour of the config's default time zone.
type Hour struct {
	Start        time.Time     // the hour's first instant, in the default zone
	Nominal      int           // firings whose nominal instant is in the hour (earlier ones count in the first hour)
	Planned      int           // firings planned in the hour
	Cap          int           // the most triggers the rules allow in any hour
	PeakMinute   int           // the most triggers planned in any 60 s that start in the hour
	LargestShift time.Duration // the largest Planned-Nominal among firings planned in the hour
}

// Result is a plan.
type Result struct {
	From       time.Time
	Horizon    time.Duration
	Location   *time.Location // the default zone the hours are in
	Rules      []Rule         // the trigger rules; Effective() is what the plan uses
	MinSpacing time.Duration
	Skew       time.Duration // each planned trigger occupies [Planned, Planned+Skew]
	Past       int           // attempts of Input.Past the plan counted
	// Truncated is true when the horizon held more than MaxFirings firings: Horizon
	// was shortened to the whole days that fit (possibly zero).
	Truncated bool
	Firings   []Firing   // placed, sorted by Planned (then Slot)
	Unplaced  []Unplaced // sorted by Nominal (then Slot)
	Hours     []Hour
}

// Expand returns the firings Plan would place for cfg and in, before placement,
// sorted by Release, Deadline, priority (higher first), Nominal and Slot. It never
// builds more than about MaxFirings firings: when the horizon holds more, it covers
// only its first whole days that fit (see Plan's Result.Truncated).
func Expand(cfg *Config, in Input) []Firing {
	fs, _ := expand(cfg, in)
	return fs
}

// expandChunk is how much of the horizon expand builds at a time: it checks the count
// before building each chunk's firings.
const expandChunk = 24 * time.Hour

// expand is Expand, also returning the end of the span whose nominal instants it
// covers: From+Horizon, or an earlier chunk boundary when MaxFirings would be passed.
func expand(cfg *Config, in Input) ([]Firing, time.Time) {
	to := in.From.Add(in.Horizon)
	extra := make(map[string]bool, len(in.Extra))
	for _, f := range in.Extra {
		extra[f.Slot] = true
	}
	budget := int64(MaxFirings)
	var out []Firing
	fans := make([][]map[string]string, len(cfg.Schedules)) // built when first needed
	end := to
chunks:
	for lo := in.From; lo.Before(to); lo = lo.Add(expandChunk) {
		hi := minTime(lo.Add(expandChunk), to)
		mark := len(out)
		for i := range cfg.Schedules {
			s := &cfg.Schedules[i]
			fan := s.FanoutCount()
			if fan < 1 || fan > MaxFanout {
				continue // not a validated schedule: Fanout refuses it too
			}
			from := lo
			if in.OpenWindows && lo.Equal(in.From) {
				from = in.From.Add(-s.Window)
			}
			left := budget - int64(len(out))
			inst := s.spec.betweenN(s.Location, from, hi, int(left/fan)+1)
			if int64(len(inst))*fan > left {
				out, end = out[:mark], lo
				break chunks
			}
			if len(inst) > 0 && fans[i] == nil {
				fans[i] = s.Fanout()
			}
			for _, n := range inst {
				for _, m := range fans[i] {
					slot := SlotKey(s.Name, n, m)
					if extra[slot] || (in.Skip != nil && in.Skip(slot)) {
						continue
					}
					rel := n
					if rel.Before(in.From) {
						rel = in.From
					}
					out = append(out, Firing{Schedule: s.Name, Slot: slot, Nominal: n, Matrix: m, Priority: s.Priority,
						Release: rel, Deadline: n.Add(s.Window)})
				}
			}
		}
	}
	seen := map[string]bool{}
	for _, f := range in.Extra {
		if seen[f.Slot] || (in.Skip != nil && in.Skip(f.Slot)) {
			continue
		}
		seen[f.Slot] = true
		f.Planned = time.Time{}
		out = append(out, f)
	}
	// Sort small keys, not the (large) firings.
	type key struct {
		rel, dl, nominal int64
		prio             int
		idx              int32
	}
	keys := make([]key, len(out))
	for i := range out {
		f := &out[i]
		keys[i] = key{f.Release.UnixNano(), f.Deadline.UnixNano(), f.Nominal.UnixNano(), f.Priority, int32(i)}
	}
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(cmp.Compare(a.rel, b.rel), cmp.Compare(a.dl, b.dl), cmp.Compare(b.prio, a.prio),
			cmp.Compare(a.nominal, b.nominal), strings.Compare(out[a.idx].Slot, out[b.idx].Slot))
	})
	idx := make([]int32, len(keys))
	for i, k := range keys {
		idx[i] = k.idx
	}
	sorted := make([]Firing, len(out))
	for i, k := range idx {
		sorted[i] = out[k]
	}
	return sorted, end
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// Plan places every firing of cfg's schedules over in's horizon.
//
// The constraints are admission's (cfg.Budget.Trigger(), package budget): a firing is
// planned at a whole second in [Release, Deadline], where the Hex client admits it if
// Hex answers every trigger at once. A planned trigger occupies [Planned, Planned+Skew],
// a past one [Sent, budget.Until]; for every trigger rule, no window of length Per
// meets more than Limit-Reserve of them; no two triggers are sent closer than
// MinSpacing.
//
// The algorithm is earliest-deadline-first on unit jobs. Because triggers are placed in
// time order, a new trigger at x is allowed iff, for every rule, the Effective()-th
// latest occupancy end is at least Per before x (budget.Budget.Wait's rule), and the
// latest send at least MinSpacing before x. So the earliest allowed instant after the
// triggers placed so far is computed in O(rules) (O(rules × log) while past attempts
// end later than planned ones), and "as early as possible" is best for everything
// after it: each trigger time only pushes later ones later. At each step the planner takes that
// earliest instant x (or the next release, if nothing is waiting), and gives it to the
// released firing with the earliest deadline, ties broken by higher priority, then
// nominal instant, then slot key. EDF finds a placement whenever one exists.
//
// When not everything fits, a firing whose deadline has passed before it got an
// instant takes the instant of the lowest-priority firing (below its own priority)
// planned inside its window; the displaced firing goes back to the queue if its own
// deadline allows, else it tries the same on its own window, else it is unplaced.
// So a firing is never left unplaced while a lower-priority firing holds an instant in
// its window. Firings left unplaced carry the reason and the schedules holding their
// window.
//
// Plan is deterministic and runs in O(n log n) for n firings.
func Plan(cfg *Config, in Input) *Result {
	loc := cfg.Location
	if loc == nil {
		loc = time.UTC
	}
	b := cfg.Budget.Trigger()
	res := &Result{From: in.From, Horizon: in.Horizon, Location: loc, Rules: b.Rules, MinSpacing: b.MinSpacing,
		Skew: b.Skew, Past: len(in.Past)}
	fs, end := expand(cfg, in)
	if end.Before(in.From.Add(in.Horizon)) {
		res.Truncated, res.Horizon = true, end.Sub(in.From)
	}
	p := newPlacer(res, fs, in, b)
	p.run()
	// Points are in time order already; only firings planned at the same second need
	// ordering by slot.
	order := make([]int32, 0, len(p.holder)-p.nPast)
	for k, j := range p.holder {
		if j >= 0 {
			fs[j].Planned = time.Unix(0, p.pts[k]).In(in.From.Location())
			order = append(order, int32(j))
		}
	}
	for a := 0; a < len(order); {
		b := a + 1
		for b < len(order) && fs[order[b]].Planned.Equal(fs[order[a]].Planned) {
			b++
		}
		if b-a > 1 {
			slices.SortFunc(order[a:b], func(x, y int32) int { return strings.Compare(fs[x].Slot, fs[y].Slot) })
		}
		a = b
	}
	res.Firings = make([]Firing, len(order))
	for i, j := range order {
		res.Firings[i] = fs[j]
	}
	uidx := make([]int32, len(p.unplaced))
	for i := range uidx {
		uidx[i] = int32(i)
	}
	slices.SortFunc(uidx, func(a, b int32) int {
		x, y := &p.jobs[p.unplaced[a].job], &p.jobs[p.unplaced[b].job]
		return cmp.Or(cmp.Compare(x.nominal, y.nominal), strings.Compare(x.slot, y.slot))
	})
	res.Unplaced = make([]Unplaced, len(p.unplaced))
	for i, k := range uidx {
		u := &p.unplaced[k]
		res.Unplaced[i] = u.Unplaced
		res.Unplaced[i].Firing = fs[u.job]
	}
	res.Hours = hours(res, fs)
	return res
}

const sec = int64(time.Second)

func ceilSec(ns int64) int64  { return -floorDiv(-ns, sec) }
func floorSec(ns int64) int64 { return floorDiv(ns, sec) }

type job struct {
	rel, dl int64 // whole seconds
	prio    int
	sched   int // schedule id
	nominal int64
	slot    string
}

type unplacedJob struct {
	job int
	Unplaced
}

type placer struct {
	res      *Result
	fs       []Firing
	jobs     []job
	rules    []Rule
	spacing  int64
	skew     int64   // a planned trigger at x occupies [x, x+skew]
	pts      []int64 // trigger send instants in ns, ascending: past first, then planned
	nPast    int
	ends     []int64 // the past attempts' occupancy ends (budget.Until) in ns, ascending
	holder   []int   // per point: the job holding it, -1 for a past attempt
	start    int64   // planning starts here (seconds)
	queue    jobHeap // released firings waiting for an instant, by deadline
	returned relHeap // firings taken back by a crisis, by release
	unplaced []unplacedJob

	crises, maxCrises int   // backtracking steps taken, and the most allowed
	maxPer            int64 // the longest rule period plus the skew margin

	names   []string // schedule names by id
	rank    []int    // position of each name in sorted order
	counts  []int    // scratch for explain, by schedule id
	touched []int
}

// maxCompeting bounds Unplaced.Competing.
const maxCompeting = 10

func newPlacer(res *Result, fs []Firing, in Input, b budget.Budget) *placer {
	p := &placer{res: res, fs: fs, rules: res.Rules, spacing: int64(b.MinSpacing), skew: int64(b.Skew)}
	p.start = ceilSec(in.From.UnixNano())
	for _, a := range in.Past {
		p.pts = append(p.pts, a.Sent.UnixNano())
		p.ends = append(p.ends, b.Until(a).UnixNano())
	}
	slices.Sort(p.pts)
	slices.Sort(p.ends)
	p.nPast = len(p.pts)
	if p.nPast > 0 {
		p.start = max(p.start, ceilSec(p.pts[p.nPast-1]))
	}
	p.holder = make([]int, p.nPast, p.nPast+len(fs))
	for i := range p.holder {
		p.holder[i] = -1
	}
	p.jobs = make([]job, len(fs))
	for i, f := range fs {
		p.jobs[i] = job{rel: ceilSec(f.Release.UnixNano()), dl: floorSec(f.Deadline.UnixNano()), prio: f.Priority,
			nominal: f.Nominal.UnixNano(), slot: f.Slot}
	}
	p.queue.jobs = p.jobs
	p.returned.jobs = p.jobs
	p.maxCrises = 64*len(fs) + 1024
	p.maxPer = maxPer(p.rules) + p.skew
	ids := map[string]int{}
	for i, f := range fs {
		id, ok := ids[f.Schedule]
		if !ok {
			id = len(p.names)
			ids[f.Schedule] = id
			p.names = append(p.names, f.Schedule)
		}
		p.jobs[i].sched = id
	}
	p.counts = make([]int, len(p.names))
	order := make([]int, len(p.names))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(p.names[a], p.names[b]) })
	p.rank = make([]int, len(p.names))
	for r, id := range order {
		p.rank[id] = r
	}
	return p
}

// earliest returns the first whole second >= t at which one more trigger is allowed:
// for every rule, the Effective()-th latest occupancy end plus Per (budget.Budget.Wait's
// rule), and the latest send plus min_spacing.
func (p *placer) earliest(t int64) int64 {
	x := t
	n := len(p.pts)
	planned := p.pts[p.nPast:]
	for _, r := range p.rules {
		l := r.Effective()
		if len(planned)+len(p.ends) < l {
			continue
		}
		var e int64
		if len(p.ends) == 0 || (len(planned) >= l && p.ends[len(p.ends)-1] <= planned[len(planned)-l]+p.skew) {
			e = planned[len(planned)-l] + p.skew // the l latest ends are all planned ones
		} else {
			e = kthLatest(p.ends, planned, p.skew, l)
		}
		x = max(x, ceilSec(e+int64(r.Per)))
	}
	if p.spacing > 0 && n > 0 {
		x = max(x, ceilSec(p.pts[n-1]+p.spacing))
	}
	return x
}

// kthLatest returns the k-th latest (1-based) of the union of a and b+off, both
// ascending, with 1 <= k <= len(a)+len(b). It takes i from a's top and k-i from b's:
// the right i is the first one for which a's (i+1)-th latest is not after b's
// (k-i)-th latest, found by binary search.
func kthLatest(a, b []int64, off int64, k int) int64 {
	top := func(s []int64, j int) int64 { return s[len(s)-j] } // j-th latest, 1-based
	lo, hi := max(0, k-len(b)), min(k, len(a))
	for lo < hi {
		i := int(uint(lo+hi) >> 1)
		if top(a, i+1) > top(b, k-i)+off {
			lo = i + 1
		} else {
			hi = i
		}
	}
	switch i := lo; {
	case i == 0:
		return top(b, k) + off
	case i == k:
		return top(a, k)
	default:
		return min(top(a, i), top(b, k-i)+off)
	}
}

func (p *placer) run() {
	t := p.start
	next := 0
	for next < len(p.jobs) || p.queue.Len() > 0 || p.returned.Len() > 0 {
		if p.queue.Len() == 0 {
			rel := int64(math.MaxInt64)
			if next < len(p.jobs) {
				rel = p.jobs[next].rel
			}
			if p.returned.Len() > 0 {
				rel = min(rel, p.jobs[p.returned.idx[0]].rel)
			}
			t = max(t, rel)
		}
		x := p.earliest(t)
		for next < len(p.jobs) && p.jobs[next].rel <= x {
			heap.Push(&p.queue, next)
			next++
		}
		for p.returned.Len() > 0 && p.jobs[p.returned.idx[0]].rel <= x {
			heap.Push(&p.queue, heap.Pop(&p.returned))
		}
		j := heap.Pop(&p.queue).(int)
		if p.jobs[j].dl < x {
			if barrier, ok := p.crisis(j); ok {
				t = barrier
				continue
			}
			p.miss(j, x, "")
			continue
		}
		p.pts = append(p.pts, x*sec)
		p.holder = append(p.holder, j)
		t = x
	}
}

// crisis handles job j that missed its deadline because an earlier choice used time it
// needed (Garey, Johnson, Simons and Tarjan's "crisis" in unit-job scheduling with
// release times). Going back from the last planned point while the holders' deadlines
// are no later than j's, it looks for the first holder k with a later deadline: the
// "pull" job. EDF chose k while none of the later holders (nor j) was released yet, so
// they were all released after k's instant; with r the earliest of their releases, k
// should not have taken an instant before r. The plan is undone from k's instant, those
// firings go back to the queue, and planning resumes at r, where EDF places the
// tighter firings before k. It reports false when there is no pull job (j cannot fit
// with the firings already planned).
func (p *placer) crisis(j int) (barrier int64, ok bool) {
	if p.crises >= p.maxCrises {
		return 0, false
	}
	dl := p.jobs[j].dl
	r := p.jobs[j].rel
	// Only points that can still weigh on j's window are looked at: a pull job further
	// back than twice the longest rule period (plus min_spacing) is not searched for.
	reach := p.jobs[j].rel*sec - 2*p.maxPer - p.spacing
	k := len(p.pts) - 1
	for ; k >= p.nPast; k-- {
		if p.pts[k] < reach {
			return 0, false
		}
		h := p.holder[k]
		if p.jobs[h].dl > dl {
			break
		}
		r = min(r, p.jobs[h].rel)
	}
	if k < p.nPast || p.pts[k] >= r*sec {
		return 0, false
	}
	p.crises++
	heap.Push(&p.returned, j)
	for _, q := range p.queue.idx { // some may be released after the new frontier
		heap.Push(&p.returned, q)
	}
	p.queue.idx = p.queue.idx[:0]
	for i := k; i < len(p.pts); i++ {
		heap.Push(&p.returned, p.holder[i])
	}
	p.pts = p.pts[:k]
	p.holder = p.holder[:k]
	return r, true
}

// window returns the planned points (indexes into pts) inside job j's window.
func (p *placer) window(j int) (lo, hi int) {
	planned := p.pts[p.nPast:]
	lo = p.nPast + sort.Search(len(planned), func(i int) bool { return planned[i] >= p.jobs[j].rel*sec })
	hi = p.nPast + sort.Search(len(planned), func(i int) bool { return planned[i] > p.jobs[j].dl*sec })
	return lo, hi
}

// miss handles job j whose deadline passed before it got an instant (x is the current
// frontier): it takes the instant of a lower-priority job in its window, or is unplaced.
func (p *placer) miss(j int, x int64, displacedBy string) {
	lo, hi := p.window(j)
	best := -1
	for k := lo; k < hi; k++ {
		h := p.holder[k]
		if p.jobs[h].prio >= p.jobs[j].prio {
			continue
		}
		if best < 0 || p.jobs[h].prio < p.jobs[p.holder[best]].prio ||
			(p.jobs[h].prio == p.jobs[p.holder[best]].prio && p.jobs[h].dl >= p.jobs[p.holder[best]].dl) {
			best = k
		}
	}
	if best >= 0 {
		victim := p.holder[best]
		p.holder[best] = j
		if p.jobs[victim].dl >= x {
			heap.Push(&p.queue, victim)
		} else {
			p.miss(victim, x, p.fs[j].Schedule)
		}
		return
	}
	p.unplaced = append(p.unplaced, unplacedJob{job: j, Unplaced: p.explain(j, displacedBy)})
}

// explain says why job j found no instant, and who holds its window.
func (p *placer) explain(j int, displacedBy string) Unplaced {
	jb := p.jobs[j]
	var full []string
	var reach int64 = 1 // how far around the window competitors are looked for
	dl := jb.dl * sec
	planned := p.pts[p.nPast:]
	for _, r := range p.rules {
		per := int64(r.Per) + p.skew // a planned trigger at x weighs on [x-Per, x+skew+Per)
		past := countIn(p.ends, dl-int64(r.Per)+1, math.MaxInt64)
		before := countIn(planned, dl-per+1, dl+1) + past
		after := countIn(planned, dl, dl+per) + past
		if max(before, after) >= r.Effective() {
			full = append(full, ruleText(r))
			reach = max(reach, per)
		}
	}
	if len(full) == 0 && p.spacing > 0 {
		full = append(full, "min_spacing "+FormatDuration(time.Duration(p.spacing)))
		reach = max(reach, p.spacing)
	}
	// Competing: the schedules holding planned instants that share a full rule's
	// window with this firing's window.
	lo := p.nPast + sort.Search(len(planned), func(i int) bool { return planned[i] > jb.rel*sec-reach })
	hi := p.nPast + sort.Search(len(planned), func(i int) bool { return planned[i] >= dl+reach })
	p.touched = p.touched[:0]
	for k := lo; k < hi; k++ {
		id := p.jobs[p.holder[k]].sched
		if p.counts[id] == 0 {
			p.touched = append(p.touched, id)
		}
		p.counts[id]++
	}
	slices.SortFunc(p.touched, func(a, b int) int {
		return cmp.Or(cmp.Compare(p.counts[b], p.counts[a]), cmp.Compare(p.rank[a], p.rank[b]))
	})
	competing := make([]string, 0, min(len(p.touched), maxCompeting))
	for i, id := range p.touched {
		if i < maxCompeting {
			competing = append(competing, p.names[id])
		}
		p.counts[id] = 0
	}

	loc := p.res.Location
	from, to := time.Unix(jb.rel, 0).In(loc), time.Unix(jb.dl, 0).In(loc)
	var b strings.Builder
	if displacedBy != "" {
		fmt.Fprintf(&b, "gave its instant to higher-priority %s; ", displacedBy)
	}
	if jb.dl < jb.rel {
		b.WriteString("its window closed before the plan starts")
	} else {
		fmt.Fprintf(&b, "no free trigger in its window %s–%s", from.Format("15:04:05"), to.Format("15:04:05"))
		if len(full) > 0 {
			fmt.Fprintf(&b, ": %s used up", strings.Join(full, " and "))
		}
		if past := countIn(p.ends, jb.rel*sec-p.maxPer+p.skew+1, math.MaxInt64); past > 0 {
			fmt.Fprintf(&b, " (%d earlier triggers count)", past)
		}
	}
	return Unplaced{Reason: b.String(), Competing: competing}
}

func maxPer(rules []Rule) int64 {
	var m int64
	for _, r := range rules {
		m = max(m, int64(r.Per))
	}
	return m
}

// ruleText describes a rule for people: "50 per 1h (60 minus 10 reserved)".
func ruleText(r Rule) string {
	s := fmt.Sprintf("%d per %s", r.Effective(), FormatDuration(r.Per))
	if r.Reserve > 0 {
		s += fmt.Sprintf(" (%d minus %d reserved)", r.Limit, r.Reserve)
	}
	return s
}

// countIn counts sorted points in [lo, hi).
func countIn(pts []int64, lo, hi int64) int {
	a, _ := slices.BinarySearch(pts, lo)
	b, _ := slices.BinarySearch(pts, hi)
	return b - a
}

// jobHeap orders job indexes by deadline, then priority (higher first), nominal, slot.
type jobHeap struct {
	jobs []job
	idx  []int
}

func (h *jobHeap) Len() int { return len(h.idx) }
func (h *jobHeap) Less(a, b int) bool {
	x, y := &h.jobs[h.idx[a]], &h.jobs[h.idx[b]]
	if x.dl != y.dl {
		return x.dl < y.dl
	}
	if x.prio != y.prio {
		return x.prio > y.prio
	}
	if x.nominal != y.nominal {
		return x.nominal < y.nominal
	}
	return x.slot < y.slot
}
func (h *jobHeap) Swap(a, b int) { h.idx[a], h.idx[b] = h.idx[b], h.idx[a] }
func (h *jobHeap) Push(v any)    { h.idx = append(h.idx, v.(int)) }
func (h *jobHeap) Pop() any {
	v := h.idx[len(h.idx)-1]
	h.idx = h.idx[:len(h.idx)-1]
	return v
}

// relHeap orders job indexes by release, then index.
type relHeap struct {
	jobs []job
	idx  []int
}

func (h *relHeap) Len() int { return len(h.idx) }
func (h *relHeap) Less(a, b int) bool {
	x, y := h.jobs[h.idx[a]].rel, h.jobs[h.idx[b]].rel
	if x != y {
		return x < y
	}
	return h.idx[a] < h.idx[b]
}
func (h *relHeap) Swap(a, b int) { h.idx[a], h.idx[b] = h.idx[b], h.idx[a] }
func (h *relHeap) Push(v any)    { h.idx = append(h.idx, v.(int)) }
func (h *relHeap) Pop() any {
	v := h.idx[len(h.idx)-1]
	h.idx = h.idx[:len(h.idx)-1]
	return v
}
