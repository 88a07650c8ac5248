package hexclient

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// How a reconcile reads a project's runs. Hex documents no order for GetProjectRuns,
// so the listing is read until every run that could be the one looked for has been
// seen, whatever the order:
//
//   - The first page decides how to walk, from its start times alone: newest first
//     (start times never increase down the page), oldest first (never decrease), or
//     neither (or fewer than 20 start times: too few to tell).
//   - Newest first: pages are read forward until one ends with a run older than the
//     cutoff; every later run is older still.
//   - Oldest first: the runs that matter are at the end. Pages are read at doubling
//     offsets until one is past the end, the last page is found by bisection, and
//     pages are read backwards from it until one begins with a run older than the
//     cutoff: O(log n) reads for n runs.
//   - Neither: every page is read, to the end.
//   - Every page read is checked against the order it was walked in, across page
//     boundaries too; a page that contradicts it (a listing that is not ordered after
//     all) makes the walk read every page it skipped.
//   - At most Config.ReconcilePages pages are read. A listing that is longer, or that
//     cannot be read, is an error: the reconcile then never concludes "no run" (and so
//     never leads to a second RunProject).
//
// Runs without a start time carry no order and are kept wherever they are seen.

// ErrIncompleteListing is matched (errors.Is) by every *IncompleteListingError.
var ErrIncompleteListing = errors.New("hexclient: the project's run listing could not be read completely")

// IncompleteListingError is a reconcile that could not read every run that could be
// the one it looks for: the listing is unordered and longer than the page bound.
type IncompleteListingError struct {
	Project string
	Pages   int    // pages read
	Runs    int    // runs seen
	Order   string // the order the walk assumed: newest, oldest or unordered
}

// Error says what was read and why it is not enough.
func (e *IncompleteListingError) Error() string {
	return fmt.Sprintf("hexclient: reconcile: the run listing of project %s is %s and longer than %d pages (%d runs read): "+
		"whether the attempt created a run cannot be told", e.Project, e.Order, e.Pages, e.Runs)
}

// Is makes errors.Is(err, ErrIncompleteListing) true.
func (e *IncompleteListingError) Is(target error) bool { return target == ErrIncompleteListing }

// listing order, as the first page shows it.
const (
	orderUnknown = "unordered"
	orderNewest  = "newest first"
	orderOldest  = "oldest first"
)

// listPage is one page read at an offset.
type listPage struct {
	offset int
	runs   []RunStatus
	last   bool // nothing after it (no next page, or empty)
}

// startBounds returns the first and last non-zero start times of runs, and whether
// the non-zero start times are non-increasing (desc) and non-decreasing (asc).
func startBounds(runs []RunStatus) (first, last time.Time, desc, asc bool) {
	desc, asc = true, true
	for _, r := range runs {
		if r.StartTime.IsZero() {
			continue
		}
		if first.IsZero() {
			first = r.StartTime
		} else {
			desc = desc && !r.StartTime.After(last)
			asc = asc && !r.StartTime.Before(last)
		}
		last = r.StartTime
	}
	return first, last, desc, asc
}

// listSince returns every API run of project that could have started at or after
// cutoff (and possibly others), reading the listing as described above.
func (c *Client) listSince(ctx context.Context, project string, cutoff time.Time) ([]RunStatus, error) {
	const limit = 100
	pages := map[int]*listPage{}
	read := func(offset int) (*listPage, error) {
		if p, ok := pages[offset]; ok {
			return p, nil
		}
		if len(pages) >= c.cfg.ReconcilePages {
			return nil, errPageBound
		}
		rp, err := c.GetProjectRuns(ctx, project, RunsQuery{Limit: limit, Offset: offset, RunTriggerFilter: "API"})
		if err != nil {
			return nil, err
		}
		p := &listPage{offset: offset, runs: rp.Runs, last: rp.NextPage == "" || len(rp.Runs) == 0}
		pages[offset] = p
		return p, nil
	}
	incomplete := func(order string) error {
		n := 0
		for _, p := range pages {
			n += len(p.runs)
		}
		return &IncompleteListingError{Project: project, Pages: len(pages), Runs: n, Order: order}
	}
	collect := func() []RunStatus {
		seen := map[string]bool{}
		var out []RunStatus
		for _, p := range pages {
			for _, r := range p.runs {
				if !seen[r.RunID] {
					seen[r.RunID] = true
					out = append(out, r)
				}
			}
		}
		return out
	}
	// readAll reads every page from offset on, to the end.
	readAll := func(order string, size int) ([]RunStatus, error) {
		for off := 0; ; off += size {
			p, err := read(off)
			if errors.Is(err, errPageBound) {
				return nil, incomplete(order)
			}
			if err != nil {
				return nil, err
			}
			if p.last {
				return collect(), nil
			}
		}
	}

	p0, err := read(0)
	if err != nil {
		if errors.Is(err, errPageBound) {
			return nil, incomplete(orderUnknown)
		}
		return nil, err
	}
	if p0.last {
		return collect(), nil
	}
	size := len(p0.runs) // the server's page size (it may cap the limit)
	first, last, desc, asc := startBounds(p0.runs)
	order := orderUnknown
	switch {
	case countStarts(p0.runs) < minOrderEvidence || first.Equal(last):
		// too few start times to tell an order: a short page can look sorted by chance
	case desc:
		order = orderNewest
	case asc:
		order = orderOldest
	}

	switch order {
	case orderNewest:
		var prevLast time.Time // the last start time of the page before
		for off := 0; ; off += size {
			p, err := read(off)
			if errors.Is(err, errPageBound) {
				return nil, incomplete(order)
			}
			if err != nil {
				return nil, err
			}
			f, l, d, _ := startBounds(p.runs)
			if !d || (!prevLast.IsZero() && !f.IsZero() && f.After(prevLast)) {
				return readAll(orderUnknown, size) // not newest first after all
			}
			if !l.IsZero() {
				prevLast = l
			}
			if p.last || (!l.IsZero() && l.Before(cutoff)) {
				return collect(), nil
			}
		}

	case orderOldest:
		if !last.Before(cutoff) {
			return readAll(order, size) // the newer runs start on the first page: read on
		}
		// Find the end: gallop to a page past it, then bisect for the last page.
		lo, hi := 0, 0 // lo: a page known to exist (not last); hi: a page known past the end or last
		var end *listPage
		for step := size; ; step *= 2 {
			p, err := read(lo + step)
			if errors.Is(err, errPageBound) {
				return nil, incomplete(order)
			}
			if err != nil {
				return nil, err
			}
			if len(p.runs) > 0 && p.last {
				end = p
				break
			}
			if len(p.runs) == 0 {
				hi = lo + step
				break
			}
			lo += step
		}
		for end == nil {
			if hi-lo <= size {
				p, err := read(lo)
				if err != nil {
					if errors.Is(err, errPageBound) {
						return nil, incomplete(order)
					}
					return nil, err
				}
				end = p
				break
			}
			mid := lo + (hi-lo)/2/size*size
			p, err := read(mid)
			if errors.Is(err, errPageBound) {
				return nil, incomplete(order)
			}
			if err != nil {
				return nil, err
			}
			switch {
			case len(p.runs) == 0:
				hi = mid
			case p.last:
				end = p
			default:
				lo = mid
			}
		}
		// Walk back from the end until a page begins before the cutoff.
		nextFirst := time.Time{}
		for off := end.offset; off >= 0; off -= size {
			p, err := read(off)
			if errors.Is(err, errPageBound) {
				return nil, incomplete(order)
			}
			if err != nil {
				return nil, err
			}
			f, l, _, a := startBounds(p.runs)
			if !a || (!nextFirst.IsZero() && !l.IsZero() && l.After(nextFirst)) {
				return readAll(orderUnknown, size) // not oldest first after all
			}
			if !f.IsZero() {
				nextFirst = f
			}
			if !f.IsZero() && f.Before(cutoff) {
				// Every page read must agree with the order too.
				if !consistentAsc(pages) {
					return readAll(orderUnknown, size)
				}
				return collect(), nil
			}
		}
		return collect(), nil
	}
	return readAll(order, size)
}

// minOrderEvidence is how many start times the first page needs before its order is
// believed (a random order of 20 distinct times looks sorted with probability 2/20!).
const minOrderEvidence = 20

func countStarts(runs []RunStatus) int {
	n := 0
	for _, r := range runs {
		if !r.StartTime.IsZero() {
			n++
		}
	}
	return n
}

// errPageBound is listSince's page bound being reached.
var errPageBound = errors.New("page bound")

// consistentAsc reports whether the pages read, in offset order, have non-decreasing
// start times within and across pages.
func consistentAsc(pages map[int]*listPage) bool {
	offs := make([]int, 0, len(pages))
	for o := range pages {
		offs = append(offs, o)
	}
	slices.Sort(offs)
	var prev time.Time
	for _, o := range offs {
		f, l, _, a := startBounds(pages[o].runs)
		if !a || (!prev.IsZero() && !f.IsZero() && f.Before(prev)) {
			return false
		}
		if !l.IsZero() {
			prev = l
		}
	}
	return true
}
