package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"hexcron/state/postgres"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"hexcron/clock"
	"hexcron/gateway"
	"hexcron/hexclient"
	"hexcron/hexclient/hexsim"
	"hexcron/planner"
	"hexcron/scheduler"
	"hexcron/state"
)

const runUsage = `Usage: hexcron run [--config FILE] [--db FILE|URL] [flags]

Run the daemon: plan every schedule under Hex's caps, fire each firing at its planned
instant, track the runs, and keep every slot in the database.

  SIGHUP   reload the config (validated fully first; a broken file keeps the old one)
  SIGTERM  stop triggering, let in-flight triggers finish (10s), exit 0

The Hex token comes from $CREDENTIALS_DIRECTORY/hex-token (systemd LoadCredential=),
else $HEX_API_TOKEN, else the config's hex.token_file; it is re-read when Hex answers 401.

Exit codes: 0 after SIGTERM, 78 when the config is invalid or unreadable at start
(EX_CONFIG: the unit's RestartPreventExitStatus= keeps systemd from restarting it),
2 bad flags, 1 any other failure (systemd restarts it).

--simulate runs the same daemon against a built-in simulated Hex (no token, no network)
on a virtual clock --speed times faster than real time, with its own database
(hexcron-sim.db, started afresh each time, unless --db is given): the demo to start with.
It only ever replaces a hexcron-sim.db that --simulate made; any other file of that
name is refused and left as it is.

Flags:
`

// Bounds of hexcron run's flags: the plan is rebuilt every 10 minutes, so a horizon of
// a week is already generous; a simulated day takes 1.4 minutes at --speed 1000.
const (
	maxRunHorizon = 7 * 24 * time.Hour
	maxSpeed      = 100_000
)

// runFlags are hexcron run's flags.
type runFlags struct {
	config, db, metricsAddr, logFormat, logLevel string
	simulate                                     bool
	speed                                        float64
	seed                                         int64
	horizon, leaseTTL                            time.Duration
}

func cmdRun(e *env, args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	reload := make(chan struct{}, 1)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			default:
			}
		}
	}()
	return runDaemon(ctx, e, args, reload)
}

// defaultConfigPath is $CONFIGURATION_DIRECTORY/schedules.yaml under systemd, else
// ./schedules.yaml.
func defaultConfigPath(getenv func(string) string) string {
	if dir := getenv("CONFIGURATION_DIRECTORY"); dir != "" {
		return filepath.Join(filepath.SplitList(dir)[0], "schedules.yaml")
	}
	return "schedules.yaml"
}

// runDaemon is hexcron run, stopped by ctx and reloaded through reload.
func runDaemon(ctx context.Context, e *env, args []string, reload <-chan struct{}) int {
	var f runFlags
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() { fmt.Fprint(e.stderr, runUsage); fs.PrintDefaults() }
	fs.StringVar(&f.config, "config", "", "schedules file (default $CONFIGURATION_DIRECTORY/schedules.yaml, else ./schedules.yaml)")
	fs.StringVar(&f.db, "db", "", "database: a SQLite file, or a postgres:// URL shared with standby daemons (default: the config's state.url, else $STATE_DIRECTORY/hexcron.db, else ./hexcron.db; with --simulate a fresh ./hexcron-sim.db)")
	fs.StringVar(&f.metricsAddr, "metrics-addr", "", "serve Prometheus /metrics and /healthz on this address, e.g. 127.0.0.1:9464 (off when empty)")
	fs.StringVar(&f.logFormat, "log-format", "auto", "auto (colour on a terminal, text otherwise), text or json")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&f.simulate, "simulate", false, "run against a built-in simulated Hex on a virtual clock (no token needed)")
	fs.Float64Var(&f.speed, "speed", 60, "with --simulate: virtual seconds per real second (positive, at most 100000)")
	fs.Int64Var(&f.seed, "seed", 2, "with --simulate: seed of the simulated Hex")
	fs.DurationVar(&f.horizon, "horizon", 2*time.Hour, "how far ahead each plan looks (positive, at most 168h)")
	fs.DurationVar(&f.leaseTTL, "lease-ttl", scheduler.DefaultOwnerTTL, "how long the lease lives unrenewed (renewed every third of it): with PostgreSQL, a standby takes over this long after the leader stops renewing (at least 3s, at most 5m)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "hexcron run: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if f.config == "" {
		f.config = defaultConfigPath(e.getenv)
	}
	if f.horizon <= 0 || f.horizon > maxRunHorizon {
		fmt.Fprintf(e.stderr, "hexcron run: --horizon must be positive and at most %s (got %s)\n", maxRunHorizon, f.horizon)
		return exitUsage
	}
	if f.leaseTTL < 3*time.Second || f.leaseTTL > 5*time.Minute {
		fmt.Fprintf(e.stderr, "hexcron run: --lease-ttl must be between 3s and 5m (got %s)\n", f.leaseTTL)
		return exitUsage
	}
	if !(f.speed > 0) || f.speed > maxSpeed { // !(>0) also refuses NaN
		fmt.Fprintf(e.stderr, "hexcron run: --speed must be positive and at most %g (got %g)\n", float64(maxSpeed), f.speed)
		return exitUsage
	}
	log, err := newLogger(e.stderr, f.logFormat, f.logLevel, e.getenv)
	if err != nil {
		fmt.Fprintf(e.stderr, "hexcron run: %v\n", err)
		return exitUsage
	}
	if err := daemon(ctx, e, f, log, reload); err != nil {
		var ce *configError
		if errors.As(err, &ce) {
			log.Error("invalid config; not starting (exit 78, which systemd does not restart: fix the file, then start the service)", "err", err)
			return exitConfig
		}
		log.Error("hexcron run failed", "err", err)
		return exitError
	}
	return exitOK
}

// configError is a config file that cannot be read or is invalid: `run` exits with
// exitConfig for it.
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

// loadConfig is planner.LoadFile with its error marked as a configError.
func loadConfig(path string) (*planner.Config, error) {
	conf, err := planner.LoadFile(path)
	if err != nil {
		return nil, &configError{err}
	}
	return conf, nil
}

func daemon(ctx context.Context, e *env, f runFlags, log *slog.Logger, reload <-chan struct{}) error {
	// The gateway's client token files are read at start and at every reload; their
	// tokens only join the Hex client's redactor (they are kept as SHA-256 digests).
	var gwSecrets gatewaySecrets
	// latest is the last config loaded without error (at start or a reload): a new term
	// of leadership builds its Hex client from it, as its daemon plans from it.
	var latest atomic.Pointer[planner.Config]
	load := func() (*planner.Config, error) {
		conf, err := loadConfig(f.config)
		if err != nil {
			return nil, err
		}
		tokens, err := resolveGatewayTokens(conf)
		if err != nil {
			return nil, &configError{err}
		}
		gwSecrets.add(tokens)
		latest.Store(conf)
		return conf, nil
	}
	conf, err := load()
	if err != nil {
		return err
	}
	for _, w := range conf.Warnings {
		log.Warn("config warning", "err", w.String())
	}
	var (
		clk     clock.Clock = clock.System{}
		baseURL             = conf.Hex.BaseURL
		token   hexclient.TokenSource
	)
	dbPath := f.db
	if f.simulate && (postgres.IsURL(f.db) || (f.db == "" && conf.State.URL != "")) {
		return errors.New("--simulate runs on a SQLite database of its own (its clock is virtual; a PostgreSQL database runs on its server's): drop --db or the config's state.url")
	}
	// Every instant of a line (the record's time and the daemon's planned, nominal,
	// until ...) in the config's default zone.
	zoned := log
	log = slog.New(clockHandler{Handler: zoned.Handler(), loc: conf.Location})
	if f.simulate {
		start := time.Now().Truncate(time.Hour).Add(time.Hour - 30*time.Second)
		clk = clock.NewScaled(clock.System{}, start, f.speed)
		log = slog.New(clockHandler{Handler: zoned.Handler(), clk: clk, loc: conf.Location})
		var stopSim func()
		baseURL, stopSim, err = serveSim(clk, f.seed, log)
		if err != nil {
			return err
		}
		defer stopSim()
		token = hexclient.StaticToken("hxtp_simulated")
		fresh := dbPath == ""
		if fresh {
			// A fresh demo database each time: the virtual clock restarts at the next
			// hour, and an old run's slots (hours ahead in simulated time) would
			// otherwise count as already handled.
			dbPath = simDBName
			if err := removeSimDB(ctx, dbPath); err != nil {
				return err
			}
		}
		log.Info("simulation: built-in Hex, virtual clock", "speed", f.speed, "starts_at", start.In(conf.Location), "hex", baseURL, "db", dbPath)
		// Show the forecast first, as `hexcron plan` would: the demo then fires it.
		if err := planner.WriteTable(e.stdout, f.config, planner.Plan(conf, planner.Input{From: clk.Now(), Horizon: 3 * time.Hour}), false); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout)
	} else {
		ts := hexclient.NewFileTokenSource(e.getenv, conf.Hex.TokenFile)
		if _, err := ts.Token(); errors.Is(err, hexclient.ErrNoToken) {
			return fmt.Errorf("no Hex token (put it in $CREDENTIALS_DIRECTORY/hex-token, $HEX_API_TOKEN or the file named by hex.token_file): %w", err)
		} else if err != nil {
			return fmt.Errorf("hex token: %w", err)
		}
		token = ts
		if dbPath == "" {
			dbPath = dbTarget("", conf, e.getenv)
		}
	}

	// SQLite: the file's lock makes this the one daemon. PostgreSQL (shared): other
	// daemons may stand by; the lease decides who leads.
	db, shared, err := openDaemonDB(ctx, dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	if sdb, ok := db.(*state.DB); ok && f.simulate && f.db == "" {
		if err := sdb.MarkSimulation(ctx); err != nil {
			return err
		}
	}
	ttl := f.leaseTTL
	if f.simulate {
		ttl = time.Duration(float64(ttl) * f.speed) // renewed every 5 real seconds, not 5 virtual ones
	}

	var metrics *scheduler.Metrics
	if f.metricsAddr != "" {
		metrics = scheduler.NewMetrics(versionString())
	}
	var gwStore scheduler.GatewayStore
	if conf.Gateway != nil {
		gwStore = db
	}
	// term builds the daemon of one term of leadership, under tenure.
	term := func(tenure *scheduler.Tenure) (*scheduler.Daemon, error) {
		hcfg := hexclient.Config{BaseURL: baseURL, Token: token, Version: versionString(), Clock: clk, Logger: log,
			Ledger: scheduler.Ledger{DB: db, Tenure: tenure}, Secrets: dbSecrets(db)}
		if metrics != nil {
			hcfg.Observer = metrics
		}
		hc, err := hexclient.New(scheduler.ClientConfig(latest.Load(), hcfg))
		if err != nil {
			return nil, err
		}
		gwSecrets.follow(hc.Redactor())
		metrics.SetClientStats(hc.Stats)
		return scheduler.New(scheduler.Config{
			Clock:    clk,
			Logger:   log,
			Store:    db,
			Hex:      hc,
			Notifier: scheduler.SystemdNotifier{},
			Metrics:  metrics,
			Load:     load,
			Horizon:  f.horizon,
			Tenure:   tenure,
			Version:  versionString(),
			Shared:   shared,
			Gateway:  gwStore,
		})
	}
	var current atomic.Pointer[scheduler.Daemon] // the daemon of the term in force; nil while standing by
	healthy := func() error {
		if d := current.Load(); d != nil {
			return d.Healthy()
		}
		return nil // a standby is healthy
	}
	var d *scheduler.Daemon
	if !shared {
		// The lock proves no other daemon of this file is alive: take the lease at once.
		tenure, err := registerProcess(ctx, db, state.RoleDaemon, clk, ttl, log)
		if err != nil {
			return err
		}
		if d, err = term(tenure); err != nil {
			return err
		}
		current.Store(d)
	}
	if conf.Gateway != nil {
		ln, err := listenGateway(conf.Gateway)
		if err != nil {
			return err
		}
		// The gateway answers through the daemon of the term in force; a standby
		// answers 503 (see gatewayBackend).
		gw := gateway.New(gateway.Config{Backend: &gatewayBackend{daemon: current.Load, conf: conf, clients: gatewayClients(conf)}, Observer: metrics, Logger: log})
		// Shut down with the daemon: its stop answers the calls still waiting.
		gctx, stopGW := context.WithCancel(ctx)
		served := make(chan struct{})
		defer func() { stopGW(); <-served }()
		go func() { defer close(served); serveGateway(gctx, ln, gw, 15*time.Second, log) }()
		scheme := "http"
		if conf.Gateway.TLS != nil {
			scheme = "https"
		}
		log.Info("serving the trigger gateway", "addr", ln.Addr().String(), "scheme", scheme, "clients", len(conf.Gateway.Clients))
	}
	if metrics != nil {
		// Every series at its value before the first scrape (the daemon repeats this
		// when its run starts, and at each reload).
		if err := metrics.FollowConfig(ctx, conf, db, clk.Now()); err != nil {
			return err
		}
		ln, err := net.Listen("tcp", f.metricsAddr)
		if err != nil {
			return fmt.Errorf("--metrics-addr: %w", err)
		}
		go func() {
			if err := metrics.Serve(ctx, ln, healthy); err != nil {
				log.Error("metrics server stopped", "err", err)
			}
		}()
		log.Info("serving metrics", "addr", ln.Addr().String())
	}
	if !shared {
		return d.Run(ctx, reload)
	}
	host, _ := os.Hostname()
	return scheduler.Lead(ctx, scheduler.LeadConfig{
		Store:    db,
		Tenure:   scheduler.TenureConfig{Host: host, PID: os.Getpid(), Clock: clk, TTL: ttl, Logger: log},
		Notifier: scheduler.SystemdNotifier{},
		Metrics:  metrics,
		Logger:   log,
		Run: func(ctx context.Context, t *scheduler.Tenure) error {
			d, err := term(t)
			if err != nil {
				_ = t.Release(context.WithoutCancel(ctx))
				return err
			}
			current.Store(d)
			defer current.Store(nil)
			return d.Run(ctx, reload)
		},
	})
}

// simDBName is the database `run --simulate` uses without --db.
const simDBName = "hexcron-sim.db"

// removeSimDB removes the demo database left by an earlier `run --simulate`, and only
// that: a file of that name that --simulate did not make (a text file, another
// program's database, a symlink, a real hexcron database) is refused and keeps its
// bytes.
func removeSimDB(ctx context.Context, path string) error {
	ours, err := state.IsSimulation(ctx, path)
	if err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	if _, err := os.Lstat(path); err == nil && !ours {
		abs, _ := filepath.Abs(path)
		return fmt.Errorf("simulate: %s exists and is not a database that `hexcron run --simulate` made; "+
			"hexcron never replaces a file it does not own: move it away, or pass --db FILE to run the demo on another database", abs)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if fi, err := os.Lstat(p); err == nil && !fi.Mode().IsRegular() {
			return fmt.Errorf("simulate: %s is not a regular file; move it away, or pass --db FILE", p)
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("simulate: fresh database: %w", err)
		}
	}
	return nil
}

// registerProcess records this process as an owner of db's triggers (the daemon also
// takes the lease): see docs/state.md, "One daemon per database".
func registerProcess(ctx context.Context, db scheduler.TenureStore, role state.Role, clk clock.Clock, ttl time.Duration, log *slog.Logger) (*scheduler.Tenure, error) {
	host, _ := os.Hostname()
	return scheduler.Register(ctx, scheduler.TenureConfig{
		Store: db, Role: role, Lead: role == state.RoleDaemon, Host: host, PID: os.Getpid(), Clock: clk, TTL: ttl, Logger: log,
	})
}

// serveSim starts the built-in simulated Hex on a loopback port and returns its base
// URL. Runs take a few minutes; a few end ERRORED, a few hang in RUNNING so that
// timeouts show, and a few triggers get a 500 after Hex created the run.
func serveSim(clk clock.Clock, seed int64, log *slog.Logger) (base string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("simulate: %w", err)
	}
	base = "http://" + ln.Addr().String() + "/api/v1"
	sim := hexsim.New(hexsim.Config{
		Clock:   clk,
		Seed:    seed,
		BaseURL: base,
		Runs: hexsim.Lifecycle{
			Pending:       5 * time.Second,
			PendingJitter: 20 * time.Second,
			Running:       2 * time.Minute,
			RunningJitter: 6 * time.Minute,
			Outcomes: map[hexsim.Outcome]float64{
				hexsim.OutcomeCompleted: 80, hexsim.OutcomeErrored: 6, hexsim.OutcomeStuck: 10, hexsim.OutcomeUnknown: 4,
			},
		},
		// Now and then a 500 after the run was created: the demo shows the reconcile
		// that adopts the run instead of POSTing again. The second trigger always gets
		// one, so that the demo shows it in its first simulated minute whatever the
		// draws (which depend on how reads and triggers interleave).
		Faults: hexsim.Faults{
			At:            map[int]hexsim.Fault{2: hexsim.Fault5xxAfterCreate},
			Probabilities: map[hexsim.Fault]float64{hexsim.Fault5xxAfterCreate: 0.08},
		},
	})
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("simulated Hex stopped", "err", err)
		}
	}()
	return base, func() { _ = srv.Close() }, nil
}
