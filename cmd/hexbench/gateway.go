package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// gatewaySection measures the trigger gateway of a real `hexcron run` against `hexcron
// sim` on loopback, with Hex's caps: hexbench is the load generator, a separate
// process, with n connections (each of o.gwConns in turn, a fresh daemon each time),
// each sending POST /api/v1/projects/ID/runs (no key, one after the other) for
// o.gwTime. The first 20 requests of the minute are admitted; every later one is
// answered 429 with the ledger's prediction.
func gatewaySection(ctx context.Context, o options, w io.Writer) error {
	dir, err := os.MkdirTemp("", "hexbench-gateway-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := buildHexcron(ctx, dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "### Trigger gateway\n\n`hexcron run` serving its gateway on loopback (plain HTTP), against `hexcron sim` with Hex's "+
		"limits; hexbench, a second process, is the load generator: n connections, each sending `POST /api/v1/projects/ID/runs` "+
		"(Hex's body, no Idempotency-Key, the client's wait 2s) one after the other for %s, a fresh daemon and database for each n. "+
		"With Hex's caps (20/1m, 60/1h) the first 20 requests are admitted (each waits for the plan's next whole second, the "+
		"trigger and Hex's 201) and every later one is answered 429 with the ledger's prediction as Retry-After. Latency is from "+
		"sending the request to reading the whole answer.\n\n", o.gwTime)
	fmt.Fprintln(w, "| connections | requests | answered per second | 201 | 429 | other | p50 | p99 | max | p50 of 201 | p50 of 429 | p99 of 429 | 429s from Hex |\n|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, n := range o.gwConns {
		if err := gatewayRun(ctx, o, w, bin, dir, n); err != nil {
			return fmt.Errorf("%d connections: %w", n, err)
		}
	}
	fmt.Fprintln(w)
	return nil
}

const benchProject = "5a8591dd-4039-49df-9202-96385ba3eff8"

func gatewayRun(ctx context.Context, o options, w io.Writer, bin, dir string, conns int) error {
	tag := fmt.Sprintf("%d", time.Now().UnixNano())
	simCfg := filepath.Join(dir, "sim-"+tag+".yaml")
	if err := os.WriteFile(simCfg, []byte("runs:\n  pending: 1s\n  running: 5s\n"), 0o644); err != nil {
		return err
	}
	base, stopSim, err := startSim(ctx, bin, "--config", simCfg)
	if err != nil {
		return err
	}
	defer stopSim()

	const token = "hexbench-gateway-client-token"
	if err := os.WriteFile(filepath.Join(dir, "bench.token"), []byte(token), 0o600); err != nil {
		return err
	}
	cfg := filepath.Join(dir, "gw-"+tag+".yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`hex:
  base_url: %s
budget:
  triggers: [{limit: 20, per: 1m}, {limit: 60, per: 1h}]
schedules:
  - {name: yearly, project: %s, cron: "0 0 1 1 *"}
gateway:
  listen: 127.0.0.1:0
  clients:
    - {name: bench, token_file: bench.token, projects: [%s], wait: 2s}
`, base, benchProject, benchProject)), 0o644); err != nil {
		return err
	}
	d := exec.CommandContext(ctx, bin, "run", "--config", cfg, "--db", filepath.Join(dir, "gw-"+tag+".db"), "--log-format", "text")
	d.Env = append(os.Environ(), "HEX_API_TOKEN=hxtp_bench_gateway_"+tag)
	stderr, err := d.StderrPipe()
	if err != nil {
		return err
	}
	if err := d.Start(); err != nil {
		return err
	}
	defer func() { d.Process.Signal(syscall.SIGTERM); d.Wait() }()
	addrRE := regexp.MustCompile(`msg="serving the trigger gateway" addr=(\S+)`)
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if m := addrRE.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		close(found)
	}()
	var addr string
	select {
	case a, ok := <-found:
		if !ok {
			return fmt.Errorf("hexcron run exited before it served the gateway")
		}
		addr = a
	case <-time.After(time.Minute):
		return fmt.Errorf("hexcron run did not serve the gateway within a minute")
	}
	time.Sleep(time.Second) // the daemon's start-up (first plan) settles

	type result struct {
		code int
		lat  time.Duration
	}
	var mu sync.Mutex
	var results []result
	url := "http://" + addr + "/api/v1/projects/" + benchProject + "/runs"
	tr := &http.Transport{MaxIdleConnsPerHost: conns}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	end := time.Now().Add(o.gwTime)
	start := time.Now()
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) && ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(`{"inputParams": {"source": "hexbench"}}`))
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/json")
				t0 := time.Now()
				resp, err := client.Do(req)
				code := 0
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					code = resp.StatusCode
				}
				lat := time.Since(t0)
				mu.Lock()
				results = append(results, result{code, lat})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all, ok, limited []time.Duration
	other := 0
	for _, r := range results {
		all = append(all, r.lat)
		switch r.code {
		case 201:
			ok = append(ok, r.lat)
		case 429:
			limited = append(limited, r.lat)
		default:
			other++
		}
	}
	hex429, err := sim429s(strings.TrimSuffix(base, "/api/v1"))
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "| %d | %d | %.0f | %d | %d | %d | %s | %s | %s | %s | %s | %s | %d |\n", conns, len(results), float64(len(results))/elapsed.Seconds(),
		len(ok), len(limited), other, pct(all, 50), pct(all, 99), pct(all, 100), pct(ok, 50), pct(limited, 50), pct(limited, 99), hex429)
	fmt.Fprintf(o.progress, "hexbench: gateway with %d connections: %d requests in %s\n", conns, len(results), elapsed.Round(time.Millisecond))
	return nil
}

// pct is the p-th percentile of ds ("-" when empty).
func pct(ds []time.Duration, p int) string {
	if len(ds) == 0 {
		return "-"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := min(len(s)-1, (len(s)*p+99)/100-1)
	d := s[max(i, 0)]
	if d >= 100*time.Millisecond {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(10 * time.Microsecond).String()
}

// sim429s counts the 429s hexsim answered to RunProject.
func sim429s(root string) (int, error) {
	resp, err := http.Get(root + "/_sim/requests")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var reqs []struct {
		Op     string `json:"op"`
		Status int    `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&reqs); err != nil {
		return 0, err
	}
	n := 0
	for _, r := range reqs {
		if r.Op == "RunProject" && r.Status == 429 {
			n++
		}
	}
	return n, nil
}
