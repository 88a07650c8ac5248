// Package systemd holds what a VM install of hexcron needs from systemd: the unit
// file hexcron.service and an example drop-in (hexcron.service.d/override.conf.example),
// and the Prometheus alert rules for the service, hexcron.rules.yml. Its tests run
// `systemd-analyze verify` and `systemd-analyze security --offline=yes` on the unit,
// and `promtool check rules` and `promtool test rules` (hexcron.rules.test.yml) on the
// rules; see docs/operations.md for the install steps and the alerts.
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
