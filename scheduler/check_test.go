package scheduler

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"hexcron/hexclient"
	"hexcron/hexclient/hexsim"
	"hexcron/planner"
)

// TestEveryBaseURLFormReachesHexsim: each https form people paste (bare host, trailing
// slash, /api/v1, the EU host, a tenant's host) loads, is normalised to the API root,
// and reaches the API: hexsim, served over TLS under that host name, answers the
// preflight's ListProjects and GetProject on /api/v1.
func TestEveryBaseURLFormReachesHexsim(t *testing.T) {
	sim := hexsim.New(hexsim.Config{Projects: []hexsim.Project{{ID: prjHealthy, Title: "Healthy", Published: true}}})
	var mu sync.Mutex
	var seen []string // host and path of every request
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Host+r.URL.Path)
		mu.Unlock()
		sim.ServeHTTP(w, r)
	}))
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	addr := srv.Listener.Addr().String()
	for _, tc := range []struct{ form, host string }{
		{"https://app.hex.tech", "app.hex.tech"},
		{"https://app.hex.tech/", "app.hex.tech"},
		{"https://app.hex.tech/api/v1", "app.hex.tech"},
		{"https://app.hex.tech/api/v1/", "app.hex.tech"},
		{"https://eu.hex.tech", "eu.hex.tech"},
		{"https://acme.hex.tech", "acme.hex.tech"},
		{"https://acme.hex.tech/api/v1", "acme.hex.tech"},
	} {
		t.Run(tc.form, func(t *testing.T) {
			conf, err := planner.Parse("s.yaml", []byte("hex:\n  base_url: "+tc.form+"\nschedules:\n  - {name: a, project: "+prjHealthy+", cron: \"0 * * * *\"}\n"))
			if err != nil {
				t.Fatal(err)
			}
			if want := "https://" + tc.host + "/api/v1"; conf.Hex.BaseURL != want {
				t.Fatalf("base url %q, want %q", conf.Hex.BaseURL, want)
			}
			// Every host name resolves to the test server; its certificate is checked
			// as the one httptest made (for example.com), so TLS stays verified.
			tr := &http.Transport{
				DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
					return (&net.Dialer{}).DialContext(ctx, network, addr)
				},
				TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "example.com"},
			}
			defer tr.CloseIdleConnections()
			hc, err := hexclient.New(hexclient.Config{BaseURL: conf.Hex.BaseURL, Token: hexclient.StaticToken("hxtp_forms"),
				HTTPClient: &http.Client{Transport: tr}})
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			seen = nil
			mu.Unlock()
			r := Check(context.Background(), conf, hc, CheckOptions{})
			if !r.OK() || r.Schedules[0].Title != "Healthy" {
				t.Fatalf("check: %+v", r)
			}
			mu.Lock()
			defer mu.Unlock()
			want := []string{tc.host + "/api/v1/projects", tc.host + "/api/v1/projects/" + prjHealthy}
			if strings.Join(seen, " ") != strings.Join(want, " ") {
				t.Fatalf("requests %v, want %v", seen, want)
			}
		})
	}
}
