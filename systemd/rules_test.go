package systemd

import (
	"bytes"
	"os"
	"os/exec"
	"testing"
)

// promtool returns the path of Prometheus's promtool: $PROMTOOL, else the one in PATH.
// Outside CI a missing promtool skips the test; with CI set (CI=true) it fails, so the
// checks cannot silently stop running. .ci/run extracts promtool from Debian's
// prometheus package and sets $PROMTOOL.
func promtool(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PROMTOOL"); p != "" {
		return p
	}
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	msg := "promtool not found ($PROMTOOL unset, none in PATH): run .ci/run, or extract it from Debian's prometheus package " +
		"(apt-get download prometheus; dpkg-deb --fsys-tarfile prometheus_*.deb | tar -x ./usr/bin/promtool)"
	if ci := os.Getenv("CI"); ci != "" && ci != "false" && ci != "0" {
		t.Fatalf("%s (CI=%s requires the promtool checks to run)", msg, ci)
	}
	t.Skip(msg)
	return ""
}

// TestAlertRules checks hexcron.rules.yml with promtool (syntax, PromQL, templates) and
// runs its unit tests, hexcron.rules.test.yml: each alert fires on the series that
// should fire it, with its annotations, and not before. (That the rules only name
// metrics the daemon exports is checked in package scheduler.)
func TestAlertRules(t *testing.T) {
	pt := promtool(t)
	for _, args := range [][]string{
		{"check", "rules", "hexcron.rules.yml"},
		{"test", "rules", "hexcron.rules.test.yml"},
	} {
		out, err := exec.Command(pt, args...).CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("SUCCESS")) {
			t.Errorf("promtool %v: err=%v\n%s", args, err, out)
		}
	}
}
