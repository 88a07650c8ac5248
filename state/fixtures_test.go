package state

import "time"

// t0 is an arbitrary instant the tests measure from.
var t0 = time.Date(2026, 11, 30, 11, 30, 0, 0, time.UTC)
