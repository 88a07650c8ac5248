// Package dist holds what installing and watching hexcron needs beyond the binary and
// the systemd unit (package systemd): the Debian package's definition (nfpm.yaml, its
// maintainer scripts and copyright file, built by build-deb), and the Grafana dashboard
// grafana/hexcron.json. Its tests check that the dashboard and the alert rules
// (systemd/hexcron.rules.yml) only query metrics the daemon exports, that the
// dashboard's queries parse, and that docs/operations.md lists what the package
// installs. See docs/operations.md.
package dist
