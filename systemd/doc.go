// Package systemd holds what a VM install of hexcron needs from systemd: the unit
// file hexcron.service and an example drop-in (hexcron.service.d/override.conf.example).
// Its tests run `systemd-analyze verify` and `systemd-analyze security --offline=yes`
// on them; see docs/operations.md for the install steps.
package systemd

import _ "embed"

//go:embed hexcron.service
var unit []byte

//go:embed hexcron.service.d/override.conf.example
var overrideExample []byte

// Unit returns the contents of hexcron.service, as shipped.
func Unit() []byte { return append([]byte(nil), unit...) }

// OverrideExample returns the contents of the example drop-in
// hexcron.service.d/override.conf.example.
func OverrideExample() []byte { return append([]byte(nil), overrideExample...) }
