package planner

import (
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Gateway defaults and bounds (docs/gateway.md states them).
const (
	// DefaultGatewayWait is how long a gateway request may wait for room when its
	// client sets no wait.
	DefaultGatewayWait = time.Minute
	// MaxGatewayWait is the longest wait a client may have: an HTTP request held for
	// longer outlives most proxies and CI step timeouts.
	MaxGatewayWait = 15 * time.Minute
	// DefaultIdempotencyTTL is how long an Idempotency-Key is remembered.
	DefaultIdempotencyTTL = 24 * time.Hour
	// MaxIdempotencyTTL bounds gateway.idempotency_ttl.
	MaxIdempotencyTTL = 30 * 24 * time.Hour
	// MaxGatewayClients bounds gateway.clients.
	MaxGatewayClients = 1000
	// AnonymousClient is the client label of a request whose token is unknown
	// (hexcron_gateway_requests_total{client="anonymous"}); no client may take the name.
	AnonymousClient = "anonymous"
)

var (
	gatewayKeys = []string{"listen", "tls", "clients", "idempotency_ttl"}
	tlsKeys     = []string{"cert", "key"}
	clientKeys  = []string{"name", "token_sha256", "token_file", "projects", "schedules", "max_per_hour", "priority", "wait"}
	sha256RE    = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
)

// Gateway is the `gateway:` section: the HTTP trigger gateway `hexcron run` serves.
type Gateway struct {
	// Listen is host:port, or unix:PATH for a Unix socket.
	Listen string
	// TLS names the certificate and key files; nil serves plain HTTP, which validation
	// allows only on a loopback address or a Unix socket.
	TLS *GatewayTLS
	// IdempotencyTTL is how long a client's Idempotency-Key returns the same run.
	IdempotencyTTL time.Duration
	// Clients are the callers allowed in, in file order.
	Clients []GatewayClient
	// Line is where the section starts.
	Line int
}

// GatewayTLS is the gateway's certificate and key (PEM files).
type GatewayTLS struct{ Cert, Key string }

// GatewayClient is one caller of the gateway.
type GatewayClient struct {
	// Name identifies the client in history, status, metrics and logs.
	Name string
	// TokenSHA256 is the lower-case hex SHA-256 of the client's token: written in the
	// file, or computed from TokenFile's content when `hexcron run` starts or reloads.
	TokenSHA256 string
	// TokenFile names a file holding the token itself ("" when TokenSHA256 is written).
	TokenFile string
	// Projects are the Hex project ids the client may run through the Hex-compatible
	// endpoints; Schedules are the configured schedules it may run by name.
	Projects  []string
	Schedules []string
	// MaxPerHour caps the requests of this client accepted in any hour (0: no cap of
	// its own; the Hex caps still hold).
	MaxPerHour int
	// Priority places its requests against schedules' priorities.
	Priority int
	// Wait is the longest a request waits for room before a 429.
	Wait time.Duration
	// Line is where the client starts in the file.
	Line int
}

// Client returns the gateway client called name, or nil.
func (g *Gateway) Client(name string) *GatewayClient {
	if g == nil {
		return nil
	}
	for i := range g.Clients {
		if g.Clients[i].Name == name {
			return &g.Clients[i]
		}
	}
	return nil
}

// MayRunProject reports whether the client may run project id through the
// Hex-compatible endpoints.
func (c *GatewayClient) MayRunProject(id string) bool {
	return slices.Contains(c.Projects, strings.ToLower(id))
}

// MayRunSchedule reports whether the client may run the schedule called name.
func (c *GatewayClient) MayRunSchedule(name string) bool { return slices.Contains(c.Schedules, name) }

// UnixSocket returns the socket path of a unix:PATH listen address.
func (g *Gateway) UnixSocket() (string, bool) {
	return strings.CutPrefix(g.Listen, "unix:")
}

// gatewayListen checks a listen address and reports whether it is local only (a
// loopback address or a Unix socket), where plain HTTP is allowed.
func gatewayListen(s string) (local bool, err error) {
	if path, ok := strings.CutPrefix(s, "unix:"); ok {
		if path == "" || !filepath.IsAbs(path) {
			return false, fmt.Errorf("%s: a Unix socket needs an absolute path, like unix:/run/hexcron/gateway.sock", quote(s))
		}
		return true, nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return false, fmt.Errorf("%s is not host:port (like 127.0.0.1:8470) or unix:/path/to/socket", quote(s))
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return false, fmt.Errorf("%s: the port must be a number from 0 (any free port, which the log names) to 65535", quote(s))
	}
	if host == "localhost" {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}

// gateway parses the gateway section; it runs after the schedules are built, to check
// the schedules clients name.
func (d *decoder) gateway(n *yaml.Node, cfg *Config) {
	g := &Gateway{IdempotencyTTL: DefaultIdempotencyTTL, Line: line(d.resolve(n))}
	var listenNode *yaml.Node
	ok := true
	for _, e := range d.fields(n, "gateway", gatewayKeys) {
		switch e.key {
		case "listen":
			if s, good := d.str(e.v, e.field); good {
				g.Listen, listenNode = strings.TrimSpace(s), e.v
			} else {
				ok = false
			}
		case "tls":
			t := &GatewayTLS{}
			for _, te := range d.fields(e.v, e.field, tlsKeys) {
				s, good := d.str(te.v, te.field)
				if good && strings.TrimSpace(s) == "" {
					d.errorf(te.v, te.field, "is empty: name a PEM file")
					good = false
				}
				if !good {
					ok = false
					continue
				}
				if te.key == "cert" {
					t.Cert = s
				} else {
					t.Key = s
				}
			}
			if d.resolve(e.v).Kind == yaml.MappingNode {
				for _, miss := range []struct{ v, name string }{{t.Cert, "cert"}, {t.Key, "key"}} {
					if miss.v == "" {
						d.errorf(e.v, join(e.field, miss.name), "is required: the gateway's TLS %s file (PEM)", miss.name)
						ok = false
					}
				}
			}
			g.TLS = t
		case "idempotency_ttl":
			if v, good := d.duration(e.v, e.field, true); good {
				if v > MaxIdempotencyTTL {
					d.errorf(e.v, e.field, "%s is longer than %s", FormatDuration(v), FormatDuration(MaxIdempotencyTTL))
					ok = false
				} else {
					g.IdempotencyTTL = v
				}
			} else {
				ok = false
			}
		case "clients":
			g.Clients = d.gatewayClients(e.v, e.field, cfg)
		}
	}
	if g.Listen == "" {
		if ok {
			d.errorf(n, "gateway.listen", "is required: an address like 127.0.0.1:8470, or unix:/run/hexcron/gateway.sock")
		}
	} else if local, err := gatewayListen(g.Listen); err != nil {
		d.errorf(listenNode, "gateway.listen", "%v", err)
	} else if !local && g.TLS == nil {
		d.errorf(listenNode, "gateway.listen", "%s is not a loopback address: plain HTTP would send client tokens in clear over the network; "+
			"add tls: {cert: FILE, key: FILE}, or listen on 127.0.0.1 or a unix: socket behind a TLS proxy", quote(g.Listen))
	}
	if len(g.Clients) == 0 && d.resolve(n).Kind == yaml.MappingNode {
		d.warnf(g.Line, "gateway.clients", "no clients: every request will be refused (401)")
	}
	cfg.Gateway = g
}

func (d *decoder) gatewayClients(n *yaml.Node, field string, cfg *Config) []GatewayClient {
	n = d.resolve(n)
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, field, "must be a list of clients (each item starts with - name: ...)")
		return nil
	}
	if len(n.Content) > MaxGatewayClients {
		d.errorf(n, field, "%d clients: at most %d", len(n.Content), MaxGatewayClients)
		return nil
	}
	var out []GatewayClient
	names := map[string]int{}
	hashes := map[string]int{}
	for i, item := range n.Content {
		f := index(field, i)
		c := GatewayClient{Wait: DefaultGatewayWait, Line: line(d.resolve(item))}
		if d.resolve(item).Kind != yaml.MappingNode {
			d.errorf(item, f, "must be a mapping with name, token_sha256 or token_file, and projects or schedules")
			continue
		}
		present := map[string]bool{}
		for _, e := range d.fields(item, f, clientKeys) {
			present[e.key] = true
			switch e.key {
			case "name":
				s, good := d.str(e.v, e.field)
				switch {
				case !good:
				case !slugRE.MatchString(s):
					d.errorf(e.v, e.field, "%s is not a slug: use lowercase letters, digits and hyphens (at most 63), e.g. ci", quote(s))
				case s == AnonymousClient:
					d.errorf(e.v, e.field, "%q is reserved: it labels requests with an unknown token in the metrics", AnonymousClient)
				default:
					if first, dup := names[s]; dup {
						d.errorf(e.v, e.field, "%s is already the name of %s: names must be unique", quote(s), index(field, first))
					} else {
						names[s] = i
						c.Name = s
					}
				}
			case "token_sha256":
				if s, good := d.str(e.v, e.field); good {
					s = strings.TrimSpace(s)
					if !sha256RE.MatchString(s) {
						d.errorf(e.v, e.field, "is not a SHA-256 in hex (64 hex digits): compute it with `printf %%s \"$TOKEN\" | sha256sum`")
						continue
					}
					c.TokenSHA256 = strings.ToLower(s)
					if first, dup := hashes[c.TokenSHA256]; dup {
						d.errorf(e.v, e.field, "is the same token as %s's: give each client its own token", index(field, first))
					}
					hashes[c.TokenSHA256] = i
				}
			case "token_file":
				if s, good := d.str(e.v, e.field); good {
					if strings.TrimSpace(s) == "" {
						d.errorf(e.v, e.field, "is empty: name the file holding the client's token")
						continue
					}
					c.TokenFile = s
				}
			case "projects":
				if vs, good := d.strings(e.v, e.field); good {
					for j, p := range vs {
						if !uuidRE.MatchString(p) {
							d.errorf(e.v, index(e.field, j), "%s is not a Hex project id: it is a UUID like 5a8591dd-4039-49df-9202-96385ba3eff8", quote(p))
							continue
						}
						c.Projects = append(c.Projects, strings.ToLower(p))
					}
				}
			case "schedules":
				if vs, good := d.strings(e.v, e.field); good {
					for j, s := range vs {
						if cfg.Schedule(s) == nil {
							known := make([]string, 0, len(cfg.Schedules))
							for _, k := range cfg.Schedules {
								known = append(known, k.Name)
							}
							d.errorf(e.v, index(e.field, j), "%s is not a schedule of this file%s", quote(s), suggest(s, known))
							continue
						}
						c.Schedules = append(c.Schedules, s)
					}
				}
			case "max_per_hour":
				if v, good := d.integer(e.v, e.field); good {
					if v < 1 {
						d.errorf(e.v, e.field, "must be at least 1 (got %d); leave it out for no cap of the client's own", v)
					} else {
						c.MaxPerHour = v
					}
				}
			case "priority":
				if v, good := d.integer(e.v, e.field); good {
					c.Priority = v
				}
			case "wait":
				if v, good := d.duration(e.v, e.field, false); good {
					if v > MaxGatewayWait {
						d.errorf(e.v, e.field, "%s is longer than %s: a request waits inside one HTTP call", FormatDuration(v), FormatDuration(MaxGatewayWait))
					} else {
						c.Wait = v
					}
				}
			}
		}
		if !present["name"] {
			d.errorf(item, join(f, "name"), "is required")
		}
		switch {
		case present["token_sha256"] && present["token_file"]:
			d.errorf(item, f, "has both token_sha256 and token_file: give one")
		case !present["token_sha256"] && !present["token_file"]:
			d.errorf(item, join(f, "token_sha256"), "is required (or token_file): the client's token is never written in this file")
		}
		if !present["projects"] && !present["schedules"] {
			d.errorf(item, f, "allows nothing: give projects (Hex project ids), schedules (names), or both")
		}
		out = append(out, c)
	}
	return out
}
