// Package planner turns hexcron's YAML schedules into a validated Config, expands them
// into firings (one per cron instant and matrix value) and places every firing at an
// instant inside its window so that Hex's trigger caps are never exceeded.
//
// The package is pure: apart from LoadFile reading the config file it does no I/O,
// never reads the clock (time is always an argument) and knows nothing of HTTP or SQL.
package planner
