package scheduler

import (
	"context"
	"time"

	"hexcron/clock"
	"hexcron/planner"
)

// Pacing of the daemon's background preflight: it is the least urgent reader there is.
// At start it waits out one window of Hex's all-calls cap (a process that just stopped
// may have filled it, and the read budget starts empty), then it sends one read every
// preflightPace (a fifth of the 60/min all-calls cap), so it never crowds out the polls
// of runs and the reconciles.
const (
	preflightStartDelay = time.Minute
	preflightPace       = 5 * time.Second
)

// startPreflight runs the preflight (Check) for conf in the background, cancelling
// one still running for an earlier config, and logs what it finds. It never delays a
// firing: its reads go through the read budget like any other, paced (see above).
// atStart is true for the check of the config the daemon starts with.
func (d *Daemon) startPreflight(ctx context.Context, conf *planner.Config, atStart bool) {
	if d.cfg.NoPreflight {
		return
	}
	if d.stopPreflight != nil {
		d.stopPreflight()
	}
	pctx, cancel := context.WithCancel(ctx)
	d.stopPreflight = cancel
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		wait := time.Duration(0)
		if atStart {
			wait = preflightStartDelay
		}
		pace := func(ctx context.Context) error {
			err := clock.Sleep(ctx, d.cfg.Clock, wait)
			wait = preflightPace
			return err
		}
		r := Check(pctx, conf, d.cfg.Hex, CheckOptions{Pace: pace})
		if pctx.Err() != nil {
			return // superseded by a reload, or stopping
		}
		logCheck(d.log, r)
	}()
}
