package scheduler

import (
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Notifier tells the service manager about the daemon's state (sd_notify). The
// zero-cost implementation is NopNotifier.
type Notifier interface {
	// Notify sends one state string such as "READY=1" or "STATUS=...".
	Notify(state string)
	// WatchdogInterval is how often to send WATCHDOG=1 (0: no watchdog).
	WatchdogInterval() time.Duration
}

// NopNotifier ignores every notification.
type NopNotifier struct{}

// Notify does nothing.
func (NopNotifier) Notify(string) {}

// WatchdogInterval is 0: no watchdog.
func (NopNotifier) WatchdogInterval() time.Duration { return 0 }

// SystemdNotifier talks to systemd through $NOTIFY_SOCKET; without it every call is a
// no-op, so it is safe to use unconditionally.
type SystemdNotifier struct{}

// Notify sends state to $NOTIFY_SOCKET, ignoring errors (as sd_notify(3) advises).
func (SystemdNotifier) Notify(state string) { _, _ = daemon.SdNotify(false, state) }

// WatchdogInterval is half of $WATCHDOG_USEC (when it is meant for this process), so a
// ping always lands well inside systemd's deadline.
func (SystemdNotifier) WatchdogInterval() time.Duration {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil || d <= 0 {
		return 0
	}
	return d / 2
}
