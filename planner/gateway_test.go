package planner

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const gwSchedules = `
schedules:
  - name: nightly
    project: 5a8591dd-4039-49df-9202-96385ba3eff8
    cron: "0 2 * * *"
`

const gwHash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

// TestGatewayParse: the gateway section's keys, defaults and the refusals, each with
// its file, line and field.
func TestGatewayParse(t *testing.T) {
	cfg, err := Parse("s.yaml", []byte(gwSchedules+`
gateway:
  listen: 127.0.0.1:8470
  idempotency_ttl: 12h
  clients:
    - name: ci
      token_sha256: `+strings.ToUpper(gwHash)+`
      projects: [5A8591DD-4039-49df-9202-96385ba3eff8]
      max_per_hour: 10
      priority: -1
      wait: 90s
    - name: people
      token_file: /etc/hexcron/people.token
      schedules: [nightly]
`))
	if err != nil {
		t.Fatal(err)
	}
	g := cfg.Gateway
	if g == nil || g.Listen != "127.0.0.1:8470" || g.TLS != nil || g.IdempotencyTTL != 12*time.Hour || len(g.Clients) != 2 {
		t.Fatalf("gateway = %+v", g)
	}
	ci, people := g.Client("ci"), g.Client("people")
	if ci.TokenSHA256 != gwHash || ci.MaxPerHour != 10 || ci.Priority != -1 || ci.Wait != 90*time.Second || ci.Line != 11 {
		t.Errorf("ci = %+v", ci)
	}
	if !ci.MayRunProject("5a8591dd-4039-49DF-9202-96385ba3eff8") || ci.MayRunSchedule("nightly") {
		t.Errorf("ci's permissions: projects %v schedules %v", ci.Projects, ci.Schedules)
	}
	if people.TokenFile != "/etc/hexcron/people.token" || people.Wait != DefaultGatewayWait || people.MaxPerHour != 0 ||
		!people.MayRunSchedule("nightly") || people.MayRunProject("5a8591dd-4039-49df-9202-96385ba3eff8") {
		t.Errorf("people = %+v", people)
	}
	if g.Client("nobody") != nil {
		t.Error("Client(nobody) is not nil")
	}

	cfg, err = Parse("s.yaml", []byte(gwSchedules+`
gateway:
  listen: 0.0.0.0:8470
  tls: {cert: /etc/hexcron/tls.crt, key: /etc/hexcron/tls.key}
  clients: [{name: ci, token_sha256: `+gwHash+`, projects: [5a8591dd-4039-49df-9202-96385ba3eff8]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Gateway.TLS == nil || cfg.Gateway.TLS.Cert != "/etc/hexcron/tls.crt" || cfg.Gateway.IdempotencyTTL != DefaultIdempotencyTTL {
		t.Errorf("gateway = %+v", cfg.Gateway)
	}
	if cfg, err := Parse("s.yaml", []byte(gwSchedules)); err != nil || cfg.Gateway != nil {
		t.Errorf("no gateway section: %v, %+v", err, cfg)
	}
}

// TestGatewayListen: plain HTTP only on loopback or a Unix socket.
func TestGatewayListen(t *testing.T) {
	for _, tc := range []struct {
		listen string
		tls    bool
		want   string // "" accepted
	}{
		{"127.0.0.1:8470", false, ""},
		{"127.0.0.2:8470", false, ""},
		{"[::1]:8470", false, ""},
		{"localhost:8470", false, ""},
		{"unix:/run/hexcron/gateway.sock", false, ""},
		{"0.0.0.0:8470", true, ""},
		{"ci.example.com:443", true, ""},
		{"0.0.0.0:8470", false, "is not a loopback address: plain HTTP would send client tokens in clear"},
		{":8470", false, "is not a loopback address"},
		{"10.1.2.3:8470", false, "is not a loopback address"},
		{"[::]:8470", false, "is not a loopback address"},
		{"gateway.internal:8470", false, "is not a loopback address"},
		{"unix:run/gw.sock", false, "needs an absolute path"},
		{"127.0.0.1", false, "is not host:port"},
		{"127.0.0.1:0", false, ""},
		{"127.0.0.1:65536", false, "port must be a number from 0"},
		{"127.0.0.1:http", false, "port must be a number"},
	} {
		tlsLine := ""
		if tc.tls {
			tlsLine = "  tls: {cert: c.pem, key: k.pem}\n"
		}
		src := gwSchedules + "gateway:\n  listen: \"" + tc.listen + "\"\n" + tlsLine +
			"  clients: [{name: ci, token_sha256: " + gwHash + ", schedules: [nightly]}]\n"
		_, err := Parse("s.yaml", []byte(src))
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s tls=%v: %v", tc.listen, tc.tls, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "s.yaml:7: gateway.listen") {
			t.Errorf("%s tls=%v: err = %v, want s.yaml:7: gateway.listen ... %q", tc.listen, tc.tls, err, tc.want)
		}
	}
}

// TestGatewayRefusals: each mistake in a client is named by file, line and field.
func TestGatewayRefusals(t *testing.T) {
	const head = gwSchedules + "gateway:\n  listen: 127.0.0.1:8470\n  clients:\n"
	for _, tc := range []struct {
		name, clients, want string
	}{
		{"no name", "    - {token_sha256: " + gwHash + ", schedules: [nightly]}", "s.yaml:9: gateway.clients[0].name: is required"},
		{"bad name", "    - {name: CI, token_sha256: " + gwHash + ", schedules: [nightly]}", "gateway.clients[0].name: \"CI\" is not a slug"},
		{"reserved", "    - {name: anonymous, token_sha256: " + gwHash + ", schedules: [nightly]}", "\"anonymous\" is reserved"},
		{"dup name", "    - {name: ci, token_sha256: " + gwHash + ", schedules: [nightly]}\n    - {name: ci, token_file: /t, schedules: [nightly]}",
			"gateway.clients[1].name: \"ci\" is already the name of gateway.clients[0]"},
		{"no token", "    - {name: ci, schedules: [nightly]}", "gateway.clients[0].token_sha256: is required (or token_file)"},
		{"both tokens", "    - {name: ci, token_sha256: " + gwHash + ", token_file: /t, schedules: [nightly]}", "has both token_sha256 and token_file"},
		{"short hash", "    - {name: ci, token_sha256: abc123, schedules: [nightly]}", "gateway.clients[0].token_sha256: is not a SHA-256 in hex"},
		{"shared token", "    - {name: a, token_sha256: " + gwHash + ", schedules: [nightly]}\n    - {name: b, token_sha256: " + gwHash + ", schedules: [nightly]}",
			"gateway.clients[1].token_sha256: is the same token as gateway.clients[0]'s"},
		{"nothing allowed", "    - {name: ci, token_sha256: " + gwHash + "}", "gateway.clients[0]: allows nothing"},
		{"bad project", "    - {name: ci, token_sha256: " + gwHash + ", projects: [nightly]}", "gateway.clients[0].projects[0]: \"nightly\" is not a Hex project id"},
		{"unknown schedule", "    - {name: ci, token_sha256: " + gwHash + ", schedules: [nighty]}", "gateway.clients[0].schedules[0]: \"nighty\" is not a schedule of this file (did you mean \"nightly\"?)"},
		{"zero quota", "    - {name: ci, token_sha256: " + gwHash + ", schedules: [nightly], max_per_hour: 0}", "max_per_hour: must be at least 1"},
		{"long wait", "    - {name: ci, token_sha256: " + gwHash + ", schedules: [nightly], wait: 1h}", "wait: 1h is longer than 15m"},
		{"unknown key", "    - {name: ci, token_sha256: " + gwHash + ", schedules: [nightly], max_per_houre: 3}", "gateway.clients[0].max_per_houre: unknown key (did you mean \"max_per_hour\"?)"},
		{"token in clear", "    - {name: ci, token: s3cret, schedules: [nightly]}", "gateway.clients[0].token: the Hex token never goes in this file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("s.yaml", []byte(head+tc.clients+"\n"))
			var ce *ConfigError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error repeats the token: %v", err)
			}
		})
	}
	for _, tc := range []struct{ src, want string }{
		{gwSchedules + "gateway:\n  clients: []\n", "gateway.listen: is required"},
		{gwSchedules + "gateway:\n  listen: 0.0.0.0:1\n  tls: {cert: c.pem}\n  clients: []\n", "gateway.tls.key: is required"},
		{gwSchedules + "gateway:\n  listen: 127.0.0.1:1\n  idempotency_ttl: 90d\n", "idempotency_ttl: \"90d\" is not a duration"},
		{gwSchedules + "gateway:\n  listen: 127.0.0.1:1\n  idempotency_ttl: 2000h\n", "idempotency_ttl: 83d8h is longer than 30d"},
		{gwSchedules + "gateway:\n  listen: 127.0.0.1:1\n  lsten: x\n", "gateway.lsten: unknown key (did you mean \"listen\"?)"},
	} {
		if _, err := Parse("s.yaml", []byte(tc.src)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.src[len(gwSchedules):], err, tc.want)
		}
	}
	cfg, err := Parse("s.yaml", []byte(gwSchedules+"gateway:\n  listen: 127.0.0.1:1\n"))
	if err != nil || len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0].String(), "no clients") {
		t.Errorf("no clients: %v, warnings %v", err, cfg.Warnings)
	}
}
