// Package scheduler is the hexcron daemon loop: it turns the planner's plan into
// triggers at the planned instants through the idempotent Hex trigger, tracks runs
// inside the read budget, enforces overlap policies, timeouts and max_running, catches
// up after downtime without a burst, reloads its config on request, and settles what a
// crash left behind. It declares the small interfaces it needs from hexclient and state.
package scheduler
