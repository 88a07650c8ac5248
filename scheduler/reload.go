package scheduler

import (
	"context"

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
	for _, w := range ev.conf.Warnings {
		d.log.Warn("config warning", keyErr, w.String())
	}
	d.mu.Lock()
	d.conf = ev.conf
	d.mu.Unlock()
	d.cfg.Metrics.ObserveReload(true)
	d.log.Info("reloaded", "schedules", len(ev.conf.Schedules))
	d.replan(ctx, d.cfg.Clock.Now())
}
