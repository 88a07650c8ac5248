package main

// The trigger gateway inside `hexcron run`: its clients' token files, the adapter
// that wires the daemon into the gateway (gateway.Backend), and its listener.

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"hexcron/gateway"
	"hexcron/hexclient"
	"hexcron/planner"
	"hexcron/scheduler"
	"hexcron/state"
)

// maxTokenFile bounds a gateway client's token file.
const maxTokenFile = 4096

// resolveGatewayTokens reads the token file of every gateway client that has one (a
// relative path is relative to the config file's directory) and puts the SHA-256 of
// the token in its TokenSHA256; it returns the tokens read, for the redactor, which
// keeps them only to hide them. A missing, unreadable, empty or oversized file is an
// error naming the client.
func resolveGatewayTokens(conf *planner.Config) ([]string, error) {
	if conf.Gateway == nil {
		return nil, nil
	}
	var tokens []string
	for i := range conf.Gateway.Clients {
		c := &conf.Gateway.Clients[i]
		if c.TokenFile == "" {
			continue
		}
		path := c.TokenFile
		if !filepath.IsAbs(path) {
			path = filepath.Join(filepath.Dir(conf.File), path)
		}
		fi, err := os.Stat(path)
		if err == nil && (!fi.Mode().IsRegular() || fi.Size() > maxTokenFile) {
			err = fmt.Errorf("not a regular file of at most %d bytes", maxTokenFile)
		}
		var b []byte
		if err == nil {
			b, err = os.ReadFile(path)
		}
		tok := strings.TrimSpace(string(b))
		if err == nil && tok == "" {
			err = errors.New("the file is empty")
		}
		if err != nil {
			return tokens, fmt.Errorf("%s:%d: gateway client %s: token_file %s: %w", conf.File, c.Line, c.Name, path, err)
		}
		sum := sha256.Sum256([]byte(tok))
		c.TokenSHA256 = hex.EncodeToString(sum[:])
		tokens = append(tokens, tok)
	}
	return tokens, nil
}

// gatewaySecrets are the gateway clients' tokens read so far (at start and at every
// reload): the Hex client of each term of leadership redacts every one of them.
type gatewaySecrets struct {
	mu       sync.Mutex
	tokens   []string
	redactor *hexclient.Redactor // the Hex client in force; nil before the first
}

// add records tokens and gives the new ones to the Hex client in force.
func (g *gatewaySecrets) add(tokens []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, t := range tokens {
		if slices.Contains(g.tokens, t) {
			continue
		}
		g.tokens = append(g.tokens, t)
		if g.redactor != nil {
			g.redactor.Add(t)
		}
	}
}

// follow gives r (a new Hex client's redactor) every token recorded, and makes it the
// one that gets the tokens later reloads read.
func (g *gatewaySecrets) follow(r *hexclient.Redactor) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, t := range g.tokens {
		r.Add(t)
	}
	g.redactor = r
}

// errStandby is what a standby's gateway answers for a run: the leader tracks runs.
var errStandby = errors.New("this hexcron daemon stands by: another daemon leads the database and serves the gateway")

// gatewayBackend is the daemon as the gateway sees it: the daemon of the term of
// leadership in force (daemon returns nil while this process stands by).
type gatewayBackend struct {
	daemon func() *scheduler.Daemon

	mu      sync.Mutex
	conf    *planner.Config // the config clients was made from
	clients []gateway.Client
}

// Clients returns the clients of the config in force (converted once per config).
func (b *gatewayBackend) Clients() []gateway.Client {
	var conf *planner.Config
	if d := b.daemon(); d != nil {
		conf = d.Config()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if conf == nil || conf == b.conf {
		return b.clients
	}
	b.conf, b.clients = conf, gatewayClients(conf)
	return b.clients
}

func gatewayClients(conf *planner.Config) []gateway.Client {
	if conf.Gateway == nil {
		return nil
	}
	out := make([]gateway.Client, 0, len(conf.Gateway.Clients))
	for _, c := range conf.Gateway.Clients {
		var sum [32]byte
		if b, err := hex.DecodeString(c.TokenSHA256); err == nil && len(b) == len(sum) {
			copy(sum[:], b)
		} else {
			continue // a token file not read: nobody gets in as this client
		}
		out = append(out, gateway.Client{Name: c.Name, TokenSHA256: sum, Projects: c.Projects, Schedules: c.Schedules})
	}
	return out
}

// Submit hands a gateway request to the daemon.
func (b *gatewayBackend) Submit(ctx context.Context, r gateway.Request) (gateway.Result, error) {
	req := scheduler.Request{Client: r.Client, Project: r.Project, Body: runRequestOf(r.Body), Schedule: r.Schedule, Params: r.Params,
		Key: r.Key, Hash: r.Hash, Wait: r.Wait}
	d := b.daemon()
	if d == nil {
		return gateway.Result{Status: gateway.Unavailable, Reason: errStandby.Error()}, nil
	}
	out, err := d.Submit(ctx, req)
	var rerr *scheduler.RequestError
	switch {
	case errors.As(err, &rerr) && rerr.NotFound:
		return gateway.Result{}, fmt.Errorf("%s: %w", rerr.Reason, gateway.ErrNotFound)
	case errors.As(err, &rerr):
		return gateway.Result{}, &gateway.BadRequestError{Reason: rerr.Reason}
	case err != nil:
		return gateway.Result{}, err
	}
	res := gateway.Result{RetryAfter: out.RetryAfter, Queued: out.Queued, Reason: out.Reason}
	switch out.Kind {
	case scheduler.ReplyTriggered:
		res.Status, res.Run = gateway.Triggered, runOf(out.Slot)
	case scheduler.ReplyNoRoom:
		res.Status = gateway.NoRoom
	case scheduler.ReplyQuota:
		res.Status = gateway.Quota
	case scheduler.ReplyRefused:
		res.Status = gateway.Refused
		res.Reason = "Hex refused the run: " + out.Reason
	case scheduler.ReplySkipped:
		res.Status = gateway.Skipped
	case scheduler.ReplyUnknown:
		res.Status = gateway.Unknown
	case scheduler.ReplyPending:
		res.Status = gateway.Pending
	case scheduler.ReplyKeyReused:
		res.Status = gateway.KeyReused
	default:
		res.Status = gateway.Unavailable
	}
	return res, nil
}

// Run reads a run from the daemon's tracking.
func (b *gatewayBackend) Run(ctx context.Context, client, runID string) (gateway.Run, error) {
	d := b.daemon()
	if d == nil {
		return gateway.Run{}, errStandby
	}
	s, err := d.RunOf(ctx, client, runID)
	if errors.Is(err, state.ErrNotFound) {
		return gateway.Run{}, gateway.ErrNotFound
	}
	if err != nil {
		return gateway.Run{}, err
	}
	return runOf(s), nil
}

// Cancel cancels a run through the daemon.
func (b *gatewayBackend) Cancel(ctx context.Context, client, runID string) (gateway.Run, error) {
	d := b.daemon()
	if d == nil {
		return gateway.Run{}, errStandby
	}
	s, err := d.Cancel(ctx, client, runID)
	switch {
	case errors.Is(err, state.ErrNotFound):
		return gateway.Run{}, gateway.ErrNotFound
	case errors.Is(err, scheduler.ErrRunEnded):
		return runOf(s), gateway.ErrRunEnded
	case err != nil:
		return runOf(s), err
	}
	return runOf(s), nil
}

// runOf is a slot's run as the gateway answers it.
func runOf(s state.Slot) gateway.Run {
	return gateway.Run{ProjectID: s.Project, RunID: s.RunID, RunURL: s.RunURL, TraceID: s.TraceID, ProjectVersion: s.ProjectVersion,
		Status: string(scheduler.StatusOfState(s.State)), Started: s.Started, Ended: s.Ended, Elapsed: s.Elapsed, Slot: s.Key, Schedule: s.Schedule}
}

// runRequestOf is the RunProject body of a gateway request.
func runRequestOf(b gateway.RunBody) hexclient.RunRequest {
	r := hexclient.RunRequest{InputParams: b.InputParams, DryRun: b.DryRun, UpdatePublishedResults: b.UpdatePublishedResults,
		UseCachedSQLResults: b.UseCachedSQLResults, ViewID: b.ViewID}
	for _, n := range b.Notifications {
		r.Notifications = append(r.Notifications, hexclient.Notification{Type: n.Type, IncludeSuccessScreenshot: n.IncludeSuccessScreenshot,
			SlackChannelIDs: n.SlackChannelIDs, UserIDs: n.UserIDs, GroupIDs: n.GroupIDs})
	}
	return r
}

// listenGateway opens the gateway's listener: TCP (with TLS when configured) or a Unix
// socket (mode 0660; a stale socket left by an earlier run is replaced, any other
// file at the path is refused).
func listenGateway(g *planner.Gateway) (net.Listener, error) {
	var ln net.Listener
	if path, ok := g.UnixSocket(); ok {
		if fi, err := os.Lstat(path); err == nil {
			if fi.Mode()&os.ModeSocket == 0 {
				return nil, fmt.Errorf("gateway.listen: %s exists and is not a socket; hexcron does not replace it", path)
			}
			if c, err := net.Dial("unix", path); err == nil {
				c.Close()
				return nil, fmt.Errorf("gateway.listen: %s: another process is serving this socket", path)
			}
			if err := os.Remove(path); err != nil {
				return nil, fmt.Errorf("gateway.listen: remove the stale socket: %w", err)
			}
		}
		l, err := net.Listen("unix", path)
		if err != nil {
			return nil, fmt.Errorf("gateway.listen: %w", err)
		}
		if err := os.Chmod(path, 0o660); err != nil {
			l.Close()
			return nil, fmt.Errorf("gateway.listen: %w", err)
		}
		ln = l
	} else {
		l, err := net.Listen("tcp", g.Listen)
		if err != nil {
			return nil, fmt.Errorf("gateway.listen: %w", err)
		}
		ln = l
	}
	if g.TLS != nil {
		cert, err := tls.LoadX509KeyPair(g.TLS.Cert, g.TLS.Key)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("gateway.tls: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	return ln, nil
}

// serveGateway serves h on ln until ctx is done, then shuts the server down, letting
// the calls under way get their answers (the daemon's stop answers those still
// waiting) for up to grace.
func serveGateway(ctx context.Context, ln net.Listener, h http.Handler, grace time.Duration, log *slog.Logger) {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      planner.MaxGatewayWait + 2*time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("gateway stopped", "err", err)
		}
	}()
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	<-done
}
