package scheduler

import (
	"context"
	"strings"

	"hexcron/planner"
)

// reloadState is owned by the loop goroutine.
type reloadState struct {
	running bool // a Load is under way in its goroutine
	again   bool // another reload was asked for meanwhile
}

// reloaded is a Load's result, handed to the loop.
type reloaded struct {
	conf *planner.Config
	err  error
}

// reload starts re-reading the config in its own goroutine, so that parsing never holds
// up the loop that fires triggers; the result comes back as a reloaded event. A reload
// asked for while one is under way runs once more after it.
func (d *Daemon) reload(ctx context.Context) {
	if d.reloads.running {
		d.reloads.again = true
		return
	}
	d.reloads.running = true
	d.cfg.Notifier.Notify("RELOADING=1")
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		conf, err := d.cfg.Load()
		select {
		case d.events <- reloaded{conf: conf, err: err}:
		case <-ctx.Done():
		}
	}()
}

// reloaded applies a reload's result: a broken file keeps the old config running.
func (d *Daemon) reloaded(ctx context.Context, ev reloaded) {
	d.reloads.running = false
	if d.stopping {
		return // a stop came first: nothing to apply, nor to tell systemd
	}
	defer func() {
		if d.reloads.again {
			d.reloads.again = false
			d.reload(ctx)
		}
	}()
	defer d.cfg.Notifier.Notify("READY=1")
	if ev.err != nil {
		d.cfg.Metrics.ObserveReload(false)
		d.log.Error("reload failed; the previous config keeps running", keyErr, ev.err)
		return
	}
	conf := ev.conf
	if changes := restartOnly(d.config(), conf); len(changes) > 0 {
		d.cfg.Metrics.ObserveReload(false)
		d.log.Error("reload refused: "+strings.Join(changes, "; ")+": the Hex client is built at start, so this needs a restart (systemctl restart hexcron); the previous config keeps running",
			"file", conf.File)
		return
	}
	for _, w := range conf.Warnings {
		d.log.Warn("config warning", keyErr, w.String())
	}
	now := d.cfg.Clock.Now()
	d.pinRuns(ctx, d.config(), now) // runs the new config may no longer describe keep the old one's project and timeout
	d.mu.Lock()
	d.conf = conf
	d.mu.Unlock()
	d.cfg.Metrics.ObserveReload(true)
	d.metricsConfig(ctx, conf, now)
	d.log.Info("reloaded", "schedules", len(conf.Schedules))
	d.cfg.Hex.ReleaseHolds() // "fix access, then reload": the next request to each project tells
	d.startPreflight(ctx, conf, false)
	d.requeue(ctx, conf, now)
	d.replan(ctx, now)
}
