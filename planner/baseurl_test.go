package planner

import (
	"strings"
	"testing"
)

// TestNormalizeBaseURL: every form people paste reaches Hex's API root, normalised
// once; anything else is refused with a message saying what is expected.
func TestNormalizeBaseURL(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"https://app.hex.tech", "https://app.hex.tech/api/v1"},
		{"https://app.hex.tech/", "https://app.hex.tech/api/v1"},
		{"https://app.hex.tech/api/v1", "https://app.hex.tech/api/v1"},
		{"https://app.hex.tech/api/v1/", "https://app.hex.tech/api/v1"},
		{"https://eu.hex.tech", "https://eu.hex.tech/api/v1"},
		{"https://acme.hex.tech/api/v1", "https://acme.hex.tech/api/v1"},
		{"https://Acme.Hex.Tech", "https://acme.hex.tech/api/v1"},
		{"  https://app.hex.tech  ", "https://app.hex.tech/api/v1"},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080/api/v1"},
		{"http://127.0.0.1:8080/api/v1", "http://127.0.0.1:8080/api/v1"},
		{"http://localhost:9/", "http://localhost:9/api/v1"},
		{"http://[::1]:8080/api/v1/", "http://[::1]:8080/api/v1"},
	} {
		got, err := NormalizeBaseURL(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("NormalizeBaseURL(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		in, wantErr string
	}{
		{"https://app.hex.tech/api", `path "/api" is not Hex's API root: write the host alone`},
		{"https://app.hex.tech/api/v2", `path "/api/v2" is not Hex's API root`},
		{"https://app.hex.tech/hex/api/v1", `path "/hex/api/v1" is not Hex's API root`},
		{"https://app.hex.tech/api/v1?x=1", "has a query or a fragment: write the host alone"},
		{"https://app.hex.tech/?", "has a query or a fragment"},
		{"https://app.hex.tech/api/v1#top", "has a query or a fragment"},
		{"https://user:pw@app.hex.tech", "must not carry credentials"},
		{"http://app.hex.tech", "must use https"},
		{"http://10.0.0.5/api/v1", "must use https"},
		{"ftp://app.hex.tech", "is not an http(s) URL"},
		{"app.hex.tech/api/v1", "is not an http(s) URL"},
		{"https:app.hex.tech", "is not an http(s) URL"},
		{"", "is not an http(s) URL"},
	} {
		got, err := NormalizeBaseURL(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("NormalizeBaseURL(%q) = %q, %v; want an error containing %q", tc.in, got, err, tc.wantErr)
		}
		if err != nil && strings.Contains(err.Error(), "pw") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
}

// TestBaseURLInConfig: the config stores the normalised form, and a bad one is an
// error naming the file, line and field.
func TestBaseURLInConfig(t *testing.T) {
	const sched = "schedules:\n  - {name: a, project: 0b7f3c2a-1d4e-4f5a-9b6c-7d8e9f0a1b2c, cron: \"0 * * * *\"}\n"
	conf, err := Parse("c.yaml", []byte("hex:\n  base_url: https://eu.hex.tech/\n"+sched))
	if err != nil || conf.Hex.BaseURL != "https://eu.hex.tech/api/v1" {
		t.Fatalf("base url %q, %v", conf.Hex.BaseURL, err)
	}
	_, err = Parse("c.yaml", []byte("hex:\n  base_url: https://app.hex.tech/projects?x=1\n"+sched))
	if err == nil || !strings.Contains(err.Error(), "c.yaml:2: hex.base_url: ") {
		t.Fatalf("err = %v, want c.yaml:2: hex.base_url: ...", err)
	}
}
