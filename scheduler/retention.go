package scheduler

import (
	"context"
	"fmt"
	"time"

	"hexcron/clock"
	"hexcron/planner"
	"hexcron/state"
)

// Retention: the daemon prunes at start and then every PruneEvery, in the background,
// in batches of PruneBatch rows, each its own short write transaction, so that a large
// backlog (the first prune after an upgrade, or after retention was shortened) never
// holds the write lock long enough to delay an admission.
const (
	// PruneEvery is how often the daemon prunes.
	PruneEvery = time.Hour
	// PruneBatch is how many rows one prune transaction deletes at most.
	PruneBatch = 500
	// CompactPages is how many free pages one compaction transaction returns at most
	// (1 MiB of 4 KiB pages).
	CompactPages = 256
	// LedgerKeep is how long ledger rows are kept at least, whatever the rules: a day,
	// so that `history --slot` shows the attempts of a recent slot and a reload that
	// adds a longer rule still counts the last day. Longer rules keep theirs longer.
	LedgerKeep = 24 * time.Hour
	// OwnerKeep is how long an expired owner registration (a process that died without
	// releasing it) is kept for `status`.
	OwnerKeep = 24 * time.Hour
)

// PruneStore is what pruning needs of the database (*state.DB).
type PruneStore interface {
	PruneHistory(ctx context.Context, before time.Time, limit int) (int64, error)
	PruneLedger(ctx context.Context, before time.Time, limit int) (int64, error)
	PruneOwners(ctx context.Context, before time.Time) (int64, error)
	Compact(ctx context.Context, maxPages int) (state.CompactReport, error)
}

// PruneReport is what one Prune did.
type PruneReport struct {
	Slots, Ledger, Owners int64 // rows deleted
	Batches               int   // write transactions (deletes and compactions)
	// Longest is the longest of those transactions as measured on the clock Prune was
	// given: the longest the write lock was held by pruning.
	Longest time.Duration
	// Freed is how many pages compaction returned to the file system; Converted is
	// true when this Prune converted an old file to incremental auto-vacuum (one VACUUM,
	// not counted in Longest).
	Freed     int64
	Converted bool
	// Bytes is the database file's size after pruning (pages × page size).
	Bytes int64
}

// Cutoffs says what Prune deletes under conf at now: slots that ended before Slots
// (zero: none, retention 0), ledger rows sent before Ledger (zero: none), owner rows
// expired before Owners.
type Cutoffs struct{ Slots, Ledger, Owners time.Time }

// PruneCutoffs computes the cutoffs of conf at now. Slots are kept retention long, and
// never less than the longest window plus the longest catchup plus an hour: the
// daemon's start and every replan look back that far to tell which slots were already
// handled, so a pruned slot is never planned again. Ledger rows are kept as long as any
// trigger rule can count them, and at least LedgerKeep. Retention 0 keeps every slot
// and every ledger row.
func PruneCutoffs(conf *planner.Config, now time.Time) Cutoffs {
	c := Cutoffs{Owners: now.Add(-OwnerKeep)}
	ret := conf.State.Retention
	if ret <= 0 {
		return c
	}
	var catchup time.Duration
	for _, s := range conf.Schedules {
		catchup = max(catchup, s.Catchup)
	}
	c.Slots = now.Add(-max(ret, maxWindow(conf)+catchup+time.Hour))
	c.Ledger = minTime(conf.Budget.Trigger().Since(now), now.Add(-LedgerKeep))
	return c
}

// Prune deletes the terminal slots, ledger rows and owner registrations conf no longer
// keeps at now (see PruneCutoffs; live slots are never deleted), in batches, then
// returns the freed pages to the file system. clk times each batch. It stops early,
// with ctx's error, when ctx ends.
func Prune(ctx context.Context, st PruneStore, conf *planner.Config, now time.Time, clk clock.Clock) (PruneReport, error) {
	var r PruneReport
	cut := PruneCutoffs(conf, now)
	timed := func(f func() (int64, error)) (int64, error) {
		start := clk.Now()
		n, err := f()
		r.Batches++
		r.Longest = max(r.Longest, clk.Now().Sub(start))
		return n, err
	}
	drain := func(what string, count *int64, f func() (int64, error)) error {
		for {
			n, err := timed(f)
			*count += n
			if err != nil {
				return fmt.Errorf("prune %s: %w", what, err)
			}
			if n < PruneBatch {
				return nil
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	if !cut.Slots.IsZero() {
		if err := drain("history", &r.Slots, func() (int64, error) { return st.PruneHistory(ctx, cut.Slots, PruneBatch) }); err != nil {
			return r, err
		}
	}
	if !cut.Ledger.IsZero() {
		if err := drain("ledger", &r.Ledger, func() (int64, error) { return st.PruneLedger(ctx, cut.Ledger, PruneBatch) }); err != nil {
			return r, err
		}
	}
	n, err := timed(func() (int64, error) { return st.PruneOwners(ctx, cut.Owners) })
	r.Owners = n
	if err != nil {
		return r, fmt.Errorf("prune owners: %w", err)
	}
	for {
		start := clk.Now()
		c, err := st.Compact(ctx, CompactPages)
		if err != nil {
			return r, err
		}
		r.Batches++
		if c.Converted {
			r.Converted = true // a one-time VACUUM: reported, not a batch
		} else {
			r.Longest = max(r.Longest, clk.Now().Sub(start))
		}
		r.Freed += c.Freed
		r.Bytes = c.Pages * c.PageSize
		if c.Freed < CompactPages {
			return r, nil
		}
		if err := ctx.Err(); err != nil {
			return r, err
		}
	}
}

// startPrune runs Prune in the background unless one is still running, and logs what
// it did: one INFO line when it deleted anything, else a DEBUG line.
func (d *Daemon) startPrune(ctx context.Context, now time.Time) {
	d.nextPrune = now.Add(PruneEvery)
	if !d.pruning.CompareAndSwap(false, true) {
		return
	}
	conf := d.config()
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer d.pruning.Store(false)
		r, err := Prune(ctx, d.cfg.Store, conf, now, d.cfg.Clock)
		if err != nil {
			if ctx.Err() == nil {
				d.log.Error("prune the database", keyErr, err)
			}
			return
		}
		attrs := []any{"slots", r.Slots, "ledger_rows", r.Ledger, "owners", r.Owners, "batches", r.Batches,
			"longest_batch", r.Longest, "freed_pages", r.Freed, "db_bytes", r.Bytes, "retention", planner.FormatDuration(conf.State.Retention)}
		switch {
		case r.Converted:
			d.log.Info("pruned the database (and converted the file to incremental vacuum, once)", attrs...)
		case r.Slots+r.Ledger+r.Owners > 0:
			d.log.Info("pruned the database", attrs...)
		default:
			d.log.Debug("nothing to prune", attrs...)
		}
	}()
}
