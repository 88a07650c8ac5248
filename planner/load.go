package planner

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

var (
	slugRE      = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	uuidRE      = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	paramNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
	yamlErrRE   = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
)

// tokenMessage is the error for a token written into the config. It never repeats the value.
const tokenMessage = "the Hex token never goes in this file: put it in $CREDENTIALS_DIRECTORY/hex-token " +
	"(systemd LoadCredential=), in $HEX_API_TOKEN, or in a file named by hex.token_file"

// maxNodes bounds the work done on one document, so that alias bombs cannot stall a reload.
const maxNodes = 1_000_000

// Keys accepted in each mapping; schedule keys may also be set under defaults except
// these.
var (
	topKeys        = []string{"hex", "budget", "state", "defaults", "schedules", "gateway"}
	stateKeys      = []string{"url", "retention"}
	hexKeys        = []string{"base_url", "token_file"}
	budgetKeys     = []string{"triggers", "reads", "min_spacing", "max_running"}
	ruleKeys       = []string{"limit", "per", "reserve"}
	defaultKeys    = []string{"timezone", "window", "timeout", "overlap", "catchup", "priority", "params", "use_cached_sql", "update_published_results", "notify"}
	scheduleOnly   = []string{"name", "project", "cron", "matrix", "view"}
	scheduleKeys   = append(slices.Clone(scheduleOnly), defaultKeys...)
	notifyKeys     = []string{"on", "slack_channels", "user_ids", "group_ids", "include_success_screenshot"}
	referenceStart = time.Date(2026, time.January, 5, 0, 0, 0, 0, time.UTC) // a Monday, far from DST transitions
)

// LoadFile reads the config file at path and parses it with Parse. A file that is not
// a regular file, or is larger than MaxConfigBytes, is refused before it is read.
func LoadFile(path string) (*Config, error) {
	data, err := readConfigFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse decodes and validates a config. Decoding is strict (an unknown key is an
// error). On any error it returns a *ConfigError listing every problem found, sorted by
// line; warnings are in Config.Warnings (and in ConfigError.Warnings).
func Parse(filename string, data []byte) (*Config, error) {
	d := &decoder{file: filename}
	cfg := d.parse(data)
	sortProblems(d.errs)
	sortProblems(d.warns)
	if len(d.errs) > 0 {
		return nil, &ConfigError{Problems: d.errs, Warnings: d.warns}
	}
	cfg.Warnings = d.warns
	return cfg, nil
}

func sortProblems(ps []Problem) {
	slices.SortStableFunc(ps, func(a, b Problem) int { return a.Line - b.Line })
}

type decoder struct {
	file        string
	errs, warns []Problem
	nodes       int
	tokenFields map[string]bool // fields reported for holding a token (see findTokens)
}

func (d *decoder) errorf(n *yaml.Node, field, format string, a ...any) {
	d.errs = append(d.errs, Problem{File: d.file, Line: line(n), Field: field, Message: fmt.Sprintf(format, a...)})
}

func (d *decoder) warnf(line int, field, format string, a ...any) {
	d.warns = append(d.warns, Problem{File: d.file, Line: line, Field: field, Message: fmt.Sprintf(format, a...)})
}

func line(n *yaml.Node) int {
	if n == nil {
		return 0
	}
	return n.Line
}

func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

func index(field string, i int) string { return fmt.Sprintf("%s[%d]", field, i) }

// quote shows a user's value in a message, shortened.
func quote(s string) string {
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return strconv.Quote(s)
}

func (d *decoder) parse(data []byte) *Config {
	cfg := &Config{
		File:     d.file,
		Hex:      Hex{BaseURL: DefaultBaseURL},
		Budget:   defaultBudget(),
		State:    State{Retention: DefaultRetention},
		Location: time.UTC,
	}
	if len(data) > MaxConfigBytes {
		d.errs = append(d.errs, Problem{File: d.file, Message: tooBig(int64(len(data)))})
		return cfg
	}
	counter := &tokenCounter{r: bytes.NewReader(data), limit: MaxTokens}
	dec := yaml.NewDecoder(counter)
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		switch {
		case counter.exceeded:
			d.tooManyTokens(counter)
		case errors.Is(err, io.EOF):
			d.errorf(nil, "", "the file is empty: it needs at least a schedules list")
		default:
			d.yamlError(err)
		}
		return cfg
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		d.errorf(&extra, "", "a second YAML document (after ---): put everything in one")
	} else if counter.exceeded {
		d.tooManyTokens(counter)
		return cfg
	} else if !errors.Is(err, io.EOF) {
		d.yamlError(err)
	}
	d.findTokens(&doc, "") // reports and redacts: no later message can quote a token
	d.nodes = 0
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	var defaults rawSched
	var raws []rawSched
	var gateway *yaml.Node
	for _, e := range d.fields(root, "", topKeys) {
		switch e.key {
		case "hex":
			d.hex(e.v, cfg)
		case "budget":
			d.budget(e.v, cfg)
		case "state":
			d.state(e.v, cfg)
		case "defaults":
			defaults = d.sched(e.v, "defaults", defaultKeys)
		case "schedules":
			raws = d.schedules(e.v)
		case "gateway":
			gateway = e.v
		}
	}
	if defaults.tz.set {
		cfg.Location = defaults.loc
	}
	d.build(cfg, &defaults, raws)
	if gateway != nil {
		d.gateway(gateway, cfg)
	}
	return cfg
}

func (d *decoder) tooManyTokens(c *tokenCounter) {
	d.errs = append(d.errs, Problem{File: d.file, Line: c.lines + 1,
		Message: fmt.Sprintf("more than %d YAML tokens by this line; hexcron reads schedule files of at most %d tokens (keys, values, list items and punctuation)", MaxTokens, MaxTokens)})
}

func (d *decoder) yamlError(err error) {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		for _, msg := range te.Errors {
			d.yamlMessage(msg)
		}
		return
	}
	d.yamlMessage(err.Error())
}

func (d *decoder) yamlMessage(msg string) {
	if m := yamlErrRE.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		d.errs = append(d.errs, Problem{File: d.file, Line: n, Message: "YAML: " + m[2]})
		return
	}
	d.errs = append(d.errs, Problem{File: d.file, Message: "YAML: " + strings.TrimPrefix(msg, "yaml: ")})
}

// entry is one key of a mapping.
type entry struct {
	key   string
	field string
	k, v  *yaml.Node
}

// resolve follows aliases and counts the work done.
func (d *decoder) resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 64; i++ {
		n = n.Alias
	}
	d.nodes++
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// fields returns a mapping's keys in order, after reporting duplicate and unknown keys
// and skipping keys whose value is null (absent). Merge keys (<<) are followed.
func (d *decoder) fields(n *yaml.Node, field string, known []string) []entry {
	n = d.resolve(n)
	if n == nil || isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, field, "must be a mapping of keys to values")
		return nil
	}
	var out []entry
	seen := map[string]*yaml.Node{}
	d.collect(n, field, known, seen, &out, 0)
	return out
}

func (d *decoder) collect(n *yaml.Node, field string, known []string, seen map[string]*yaml.Node, out *[]entry, depth int) {
	if depth > 8 || d.nodes > maxNodes {
		d.errorf(n, field, "too deeply nested merge keys")
		return
	}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := d.resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, field, "a key must be a plain word")
			continue
		}
		key := k.Value
		if key == "<<" && k.Tag == "!!merge" {
			merges = append(merges, v)
			continue
		}
		f := join(field, key)
		if prev, dup := seen[key]; dup {
			if depth == 0 {
				d.errorf(k, f, "set twice (first on line %d)", line(prev))
			}
			continue
		}
		seen[key] = k
		if key == "token" || key == "hex_token" || key == "api_token" {
			if !d.tokenFields[f] {
				d.errorf(k, f, "%s", tokenMessage)
			}
			continue
		}
		if field == "" && strings.HasPrefix(key, "x-") {
			continue // extension keys hold YAML anchors for reuse
		}
		if !slices.Contains(known, key) {
			d.errorf(k, f, "unknown key%s", suggest(key, known))
			continue
		}
		if isNull(d.resolve(v)) {
			continue
		}
		*out = append(*out, entry{key: key, field: f, k: k, v: v})
	}
	for _, m := range merges {
		m = d.resolve(m)
		switch m.Kind {
		case yaml.MappingNode:
			d.collect(m, field, known, seen, out, depth+1)
		case yaml.SequenceNode:
			for _, item := range m.Content {
				if item = d.resolve(item); item.Kind == yaml.MappingNode {
					d.collect(item, field, known, seen, out, depth+1)
				}
			}
		default:
			d.errorf(m, join(field, "<<"), "a merge key needs a mapping")
		}
	}
}

// suggest names the closest known key, or lists them all.
func suggest(key string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if dist := editDistance(strings.ToLower(key), k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return " (known keys: " + strings.Join(known, ", ") + ")"
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// scalar returns a scalar's text, or reports that the value must be one.
func (d *decoder) scalar(n *yaml.Node, field, what string) (string, bool) {
	n = d.resolve(n)
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, field, "must be %s", what)
		return "", false
	}
	return n.Value, true
}

func (d *decoder) str(n *yaml.Node, field string) (string, bool) {
	return d.scalar(n, field, "a string")
}

func (d *decoder) duration(n *yaml.Node, field string, positive bool) (time.Duration, bool) {
	s, ok := d.scalar(n, field, "a duration")
	if !ok {
		return 0, false
	}
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		d.errorf(n, field, "%s is not a duration: write it like 90s, 15m or 1h30m", quote(s))
		return 0, false
	}
	if positive && v <= 0 {
		d.errorf(n, field, "must be positive (got %s)", s)
		return 0, false
	}
	if v < 0 {
		d.errorf(n, field, "must not be negative (got %s)", s)
		return 0, false
	}
	return v, true
}

func (d *decoder) integer(n *yaml.Node, field string) (int, bool) {
	s, ok := d.scalar(n, field, "a whole number")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, 32)
	if errors.Is(err, strconv.ErrRange) {
		if strings.HasPrefix(strings.TrimSpace(s), "-") {
			d.errorf(n, field, "%s is too small: at least %d", quote(s), math.MinInt32)
		} else {
			d.errorf(n, field, "%s is too large: at most %d", quote(s), math.MaxInt32)
		}
		return 0, false
	}
	if err != nil {
		d.errorf(n, field, "%s is not a whole number", quote(s))
		return 0, false
	}
	return int(v), true
}

func (d *decoder) boolean(n *yaml.Node, field string) (bool, bool) {
	s, ok := d.scalar(n, field, "true or false")
	if !ok {
		return false, false
	}
	switch s {
	case "true", "True", "TRUE":
		return true, true
	case "false", "False", "FALSE":
		return false, true
	}
	d.errorf(n, field, "%s is not true or false", quote(s))
	return false, false
}

func (d *decoder) strings(n *yaml.Node, field string) ([]string, bool) {
	n = d.resolve(n)
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, field, "must be a list, like [a, b]")
		return nil, false
	}
	out := make([]string, 0, len(n.Content))
	ok := true
	for i, item := range n.Content {
		s, good := d.str(item, index(field, i))
		if good && strings.TrimSpace(s) == "" {
			d.errorf(item, index(field, i), "is empty")
			good = false
		}
		ok = ok && good
		out = append(out, s)
	}
	return out, ok
}

func (d *decoder) hex(n *yaml.Node, cfg *Config) {
	for _, e := range d.fields(n, "hex", hexKeys) {
		switch e.key {
		case "base_url":
			if s, ok := d.str(e.v, e.field); ok {
				if base, err := NormalizeBaseURL(s); err != nil {
					d.errorf(e.v, e.field, "%v", err)
				} else {
					cfg.Hex.BaseURL = base
				}
			}
		case "token_file":
			if s, ok := d.str(e.v, e.field); ok {
				cfg.Hex.TokenFile = s
			}
		}
	}
}

// checkStateURL accepts a postgres:// URL without a password (the password never
// lives in the config: $CREDENTIALS_DIRECTORY/db-password, $PGPASSWORD or
// $PGPASSFILE). The state package checks the rest when it connects.
func checkStateURL(s string) error {
	l := strings.ToLower(s)
	if !strings.HasPrefix(l, "postgres://") && !strings.HasPrefix(l, "postgresql://") {
		return fmt.Errorf("want a postgres://USER@HOST:PORT/DATABASE URL (a SQLite file is chosen with --db, or is the default)")
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a valid URL")
	}
	if _, has := u.User.Password(); has || u.Query().Has("password") {
		return fmt.Errorf("the URL carries a password: remove it; the password comes from $CREDENTIALS_DIRECTORY/db-password (systemd LoadCredential=), $PGPASSWORD or $PGPASSFILE, never from this file")
	}
	return nil
}

func (d *decoder) budget(n *yaml.Node, cfg *Config) {
	for _, e := range d.fields(n, "budget", budgetKeys) {
		switch e.key {
		case "triggers":
			if rules, ok := d.rules(e.v, e.field, "Hex allows 20 triggers per 1m and 60 per 1h"); ok {
				cfg.Budget.Triggers = rules
			}
		case "reads":
			if rules, ok := d.rules(e.v, e.field, "the default is 30 status and list calls per 1m"); ok {
				cfg.Budget.Reads = rules
			}
		case "min_spacing":
			if v, ok := d.duration(e.v, e.field, false); ok {
				cfg.Budget.MinSpacing = v
			}
		case "max_running":
			if v, ok := d.integer(e.v, e.field); ok {
				if v <= 0 {
					d.errorf(e.v, e.field, "must be at least 1 (got %d)", v)
				} else {
					cfg.Budget.MaxRunning = v
				}
			}
		}
	}
}

// state reads the state section (every key of it, in one place): where the database
// is (url) and how long it keeps history (retention).
func (d *decoder) state(n *yaml.Node, cfg *Config) {
	for _, e := range d.fields(n, "state", stateKeys) {
		switch e.key {
		case "url":
			if s, ok := d.str(e.v, e.field); ok {
				if err := checkStateURL(s); err != nil {
					d.errorf(e.v, e.field, "%v", err)
				} else {
					cfg.State.URL = s
				}
			}
		case "retention":
			s, ok := d.scalar(e.v, e.field, "a duration")
			if !ok {
				continue
			}
			v, err := parseRetention(s)
			switch {
			case err != nil:
				d.errorf(e.v, e.field, "%s is not a duration: write it like 90d, 30d, 36h or 0 (keep everything)", quote(s))
			case v < 0:
				d.errorf(e.v, e.field, "must not be negative (got %s)", s)
			case v > 0 && v < MinRetention:
				d.errorf(e.v, e.field, "must be at least %s, or 0 to keep everything (got %s)", FormatDuration(MinRetention), s)
			case v > MaxRetention:
				d.errorf(e.v, e.field, "must be at most %s (got %s); 0 keeps everything", "100y", s)
			default:
				cfg.State.Retention = v
			}
		}
	}
}

// parseRetention reads a retention: a Go duration (36h, 90m), a number of days (90d),
// days followed by a Go duration (1d12h), or 0.
func parseRetention(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	neg := strings.HasPrefix(s, "-")
	body := strings.TrimPrefix(s, "-")
	var days time.Duration
	if i := strings.IndexByte(body, 'd'); i > 0 {
		n, err := strconv.ParseUint(body[:i], 10, 32)
		if err != nil || n > uint64(MaxRetention/(24*time.Hour)) {
			return 0, fmt.Errorf("bad days in %q", s)
		}
		days, body = time.Duration(n)*24*time.Hour, body[i+1:]
	}
	var rest time.Duration
	if body != "" {
		var err error
		if rest, err = time.ParseDuration(body); err != nil || rest < 0 {
			return 0, fmt.Errorf("bad duration %q", s)
		}
	} else if days == 0 {
		return 0, fmt.Errorf("bad duration %q", s)
	}
	if neg {
		return -(days + rest), nil
	}
	return days + rest, nil
}

func (d *decoder) rules(n *yaml.Node, field, hint string) ([]Rule, bool) {
	n = d.resolve(n)
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, field, "must be a list of rules like {limit: 20, per: 1m}")
		return nil, false
	}
	if len(n.Content) == 0 {
		d.errorf(n, field, "needs at least one rule like {limit: 30, per: 1m} (%s); remove the key for the default", hint)
		return nil, false
	}
	var out []Rule
	ok := true
	for i, item := range n.Content {
		f := index(field, i)
		var r Rule
		var hasLimit, hasPer, good = false, false, true
		var reserveNode *yaml.Node
		for _, e := range d.fields(item, f, ruleKeys) {
			switch e.key {
			case "limit":
				v, g := d.integer(e.v, e.field)
				if g && v <= 0 {
					d.errorf(e.v, e.field, "must be at least 1 (got %d)", v)
					g = false
				}
				r.Limit, hasLimit, good = v, g, good && g
			case "per":
				v, g := d.duration(e.v, e.field, true)
				r.Per, hasPer, good = v, g, good && g
			case "reserve":
				v, g := d.integer(e.v, e.field)
				if g && v < 0 {
					d.errorf(e.v, e.field, "must not be negative (got %d)", v)
					g = false
				}
				r.Reserve, reserveNode, good = v, e.v, good && g
			}
		}
		if d.resolve(item).Kind == yaml.MappingNode {
			for _, miss := range []struct {
				has  bool
				name string
			}{{hasLimit, "limit"}, {hasPer, "per"}} {
				if !miss.has && good {
					d.errorf(item, join(f, miss.name), "is required")
					good = false
				}
			}
		} else {
			good = false
		}
		if good && r.Reserve >= r.Limit {
			d.errorf(reserveNode, join(f, "reserve"), "%d leaves nothing of the limit %d: reserve must be less than limit", r.Reserve, r.Limit)
			good = false
		}
		ok = ok && good
		out = append(out, r)
	}
	return out, ok
}

// opt is a value that may be absent, with where it was set.
type opt[T any] struct {
	v     T
	set   bool
	line  int
	field string
}

func (o *opt[T]) put(v T, e entry) { *o = opt[T]{v: v, set: true, line: line(e.k), field: e.field} }

// rawSched is a schedule (or the defaults) as written, before defaults are applied.
type rawSched struct {
	line, index                 int
	name, project, cron         opt[string]
	tz, overlap                 opt[string]
	window, timeout, catchup    opt[time.Duration]
	priority                    opt[int]
	params                      opt[map[string]any]
	useCached, updatePublished  opt[bool]
	notify                      opt[[]Notify]
	matrix                      opt[map[string][]string]
	view                        opt[string]
	loc                         *time.Location
	spec                        *cronSpec
	bad                         bool            // some value was rejected
	present                     map[string]bool // keys written, valid or not
	notMapping                  bool            // the item is not a mapping (already reported)
	cronLine, windowLine, mline int
}

func (d *decoder) schedules(n *yaml.Node) []rawSched {
	n = d.resolve(n)
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "schedules", "must be a list of schedules (each item starts with - name: ...)")
		return nil
	}
	out := make([]rawSched, 0, len(n.Content))
	for i, item := range n.Content {
		r := d.sched(item, index("schedules", i), scheduleKeys)
		r.index = i
		out = append(out, r)
	}
	return out
}

func (d *decoder) sched(n *yaml.Node, field string, known []string) rawSched {
	r := rawSched{line: line(d.resolve(n)), present: map[string]bool{}}
	if rn := d.resolve(n); rn == nil || rn.Kind != yaml.MappingNode {
		r.notMapping = true
		if field != "defaults" && isNull(rn) {
			d.errorf(rn, field, "is empty: a schedule needs at least name, project and cron")
		}
	}
	before := len(d.errs)
	fieldKeys := known
	if field == "defaults" {
		fieldKeys = scheduleKeys // so that name, cron, ... get a precise message
	}
	for _, e := range d.fields(n, field, fieldKeys) {
		r.present[e.key] = true
		if !slices.Contains(known, e.key) {
			d.errorf(e.k, e.field, "cannot be set under defaults: set it on each schedule")
			continue
		}
		switch e.key {
		case "name", "project", "cron", "overlap", "view":
			s, ok := d.str(e.v, e.field)
			if !ok {
				continue
			}
			switch e.key {
			case "view":
				if strings.TrimSpace(s) == "" || strings.ContainsAny(s, " \t\r\n") || len(s) > 200 {
					d.errorf(e.v, e.field, "%s is not a Hex view id: copy the saved view's id from Hex (no spaces)", quote(s))
					continue
				}
				r.view.put(s, e)
			case "name":
				if !slugRE.MatchString(s) {
					d.errorf(e.v, e.field, "%s is not a slug: use lowercase letters, digits and hyphens (at most 63), e.g. revenue-dashboard", quote(s))
					continue
				}
				r.name.put(s, e)
			case "project":
				if !uuidRE.MatchString(s) {
					d.errorf(e.v, e.field, "%s is not a Hex project id: it is a UUID like 5a8591dd-4039-49df-9202-96385ba3eff8 (from the project's URL)", quote(s))
					continue
				}
				r.project.put(strings.ToLower(s), e)
			case "cron":
				spec, err := parseCron(s)
				if err != nil {
					hint := ""
					if strings.HasPrefix(err.Error(), "does not parse") {
						hint = ` (write 5 fields "min hour dom month dow", 6 with seconds first, or @hourly, @daily, @every 10m)`
					}
					d.errorf(e.v, e.field, "%s %v%s", quote(s), err, hint)
					continue
				}
				r.cron.put(s, e)
				r.spec, r.cronLine = spec, line(e.v)
			case "overlap":
				if !slices.Contains(overlapPolicies, s) {
					d.errorf(e.v, e.field, "%s is not one of %s", quote(s), strings.Join(overlapPolicies, ", "))
					continue
				}
				r.overlap.put(s, e)
			}
		case "timezone":
			s, ok := d.str(e.v, e.field)
			if !ok {
				continue
			}
			loc, err := loadLocation(s)
			if err != nil {
				d.errorf(e.v, e.field, "%v", err)
				continue
			}
			r.tz.put(s, e)
			r.loc = loc
		case "window", "timeout":
			if v, ok := d.duration(e.v, e.field, true); ok {
				if e.key == "window" {
					if v%time.Second != 0 {
						d.errorf(e.v, e.field, "must be a whole number of seconds (got %s)", v)
						continue
					}
					if v > MaxWindow {
						d.errorf(e.v, e.field, "%s is longer than the longest window hexcron plans, %s (744h)", strings.TrimSpace(e.v.Value), FormatDuration(MaxWindow))
						continue
					}
					r.window.put(v, e)
					r.windowLine = line(e.v)
				} else {
					r.timeout.put(v, e)
				}
			}
		case "catchup":
			if v, ok := d.duration(e.v, e.field, false); ok {
				r.catchup.put(v, e)
			}
		case "priority":
			if v, ok := d.integer(e.v, e.field); ok {
				r.priority.put(v, e)
			}
		case "use_cached_sql", "update_published_results":
			if v, ok := d.boolean(e.v, e.field); ok {
				if e.key == "use_cached_sql" {
					r.useCached.put(v, e)
				} else {
					r.updatePublished.put(v, e)
				}
			}
		case "params":
			if v, ok := d.params(e.v, e.field); ok {
				r.params.put(v, e)
			}
		case "notify":
			if v, ok := d.notify(e.v, e.field); ok {
				r.notify.put(v, e)
			}
		case "matrix":
			if v, ok := d.matrix(e.v, e.field); ok {
				r.matrix.put(v, e)
				r.mline = line(e.k)
			}
		}
	}
	r.bad = len(d.errs) > before
	return r
}

func loadLocation(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		return nil, fmt.Errorf("%s depends on the machine: name an IANA zone like Europe/Berlin or UTC", quote(name))
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("%s is not a known time zone: use an IANA name like Europe/Berlin, America/New_York or UTC", quote(name))
	}
	return loc, nil
}

func (d *decoder) params(n *yaml.Node, field string) (map[string]any, bool) {
	n = d.resolve(n)
	if n.Kind != yaml.MappingNode {
		d.errorf(n, field, "must be a mapping of Hex input names to values")
		return nil, false
	}
	var m map[string]any
	if err := n.Decode(&m); err != nil {
		d.errorf(n, field, "cannot be read: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		return nil, false
	}
	for k := range m {
		if !paramNameRE.MatchString(k) {
			d.errorf(n, join(field, k), "%s is not a Hex input name (letters, digits and _)", quote(k))
			return nil, false
		}
	}
	if _, err := json.Marshal(m); err != nil {
		d.errorf(n, field, "must be JSON-like (string keys, no binary values): %v", err)
		return nil, false
	}
	return m, true
}

func (d *decoder) notify(n *yaml.Node, field string) ([]Notify, bool) {
	n = d.resolve(n)
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, field, "must be a list like [{on: failure, slack_channels: [C0123456]}]")
		return nil, false
	}
	out := []Notify{}
	ok := true
	for i, item := range n.Content {
		f := index(field, i)
		var nt Notify
		good := d.resolve(item).Kind == yaml.MappingNode
		for _, e := range d.fields(item, f, notifyKeys) {
			switch e.key {
			case "on":
				s, g := d.str(e.v, e.field)
				if g && notifyOn[s] == "" {
					d.errorf(e.v, e.field, "%s is not one of success, failure, all", quote(s))
					g = false
				}
				nt.On, good = s, good && g
			case "slack_channels", "user_ids", "group_ids":
				v, g := d.strings(e.v, e.field)
				good = good && g
				switch e.key {
				case "slack_channels":
					nt.SlackChannels = v
				case "user_ids":
					nt.UserIDs = v
				default:
					nt.GroupIDs = v
				}
			case "include_success_screenshot":
				v, g := d.boolean(e.v, e.field)
				nt.IncludeSuccessScreenshot, good = v, good && g
			}
		}
		if good && nt.On == "" {
			d.errorf(item, join(f, "on"), "is required: success, failure or all")
			good = false
		}
		if good && len(nt.SlackChannels)+len(nt.UserIDs)+len(nt.GroupIDs) == 0 {
			d.errorf(item, f, "names no recipient: add slack_channels, user_ids or group_ids")
			good = false
		}
		ok = ok && good
		out = append(out, nt)
	}
	return out, ok
}

// unsafeRune finds a control character or an invisible formatting character (bidi
// overrides and isolates, zero-width characters, ...) in s.
func unsafeRune(s string) (rune, bool) {
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError {
			return r, true
		}
	}
	return 0, false
}

func (d *decoder) matrix(n *yaml.Node, field string) (map[string][]string, bool) {
	n = d.resolve(n)
	if n.Kind != yaml.MappingNode {
		d.errorf(n, field, "must be a mapping like {region: [emea, amer]}")
		return nil, false
	}
	if len(n.Content) == 0 {
		d.errorf(n, field, "is empty: remove it or give a key with values")
		return nil, false
	}
	out := map[string][]string{}
	ok := true
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := d.resolve(n.Content[i])
		f := join(field, k.Value)
		if k.Kind != yaml.ScalarNode || !paramNameRE.MatchString(k.Value) {
			d.errorf(k, f, "%s is not a Hex input name (letters, digits and _)", quote(k.Value))
			ok = false
			continue
		}
		if _, dup := out[k.Value]; dup {
			d.errorf(k, f, "set twice")
			ok = false
			continue
		}
		vals, good := d.strings(n.Content[i+1], f)
		if good && len(vals) == 0 {
			d.errorf(n.Content[i+1], f, "has no values: a matrix key needs at least one")
			good = false
		}
		seen := map[string]bool{}
		for j, v := range vals {
			if !good {
				break
			}
			if item := d.resolve(n.Content[i+1]).Content[j]; isNull(d.resolve(item)) {
				d.errorf(item, index(f, j), "is null (%s): write the value in quotes if you mean that text", quote(v))
				good = false
			} else if r, ok := unsafeRune(v); ok {
				d.errorf(n.Content[i+1], index(f, j), "contains the invisible or control character %U: matrix values are part of slot keys and log lines", r)
				good = false
			} else if strings.ContainsAny(v, ",=[] \t\n\r") {
				d.errorf(n.Content[i+1], index(f, j), "%s must not contain spaces or any of , = [ ] (it is part of the slot key)", quote(v))
				good = false
			} else if seen[v] {
				d.errorf(n.Content[i+1], index(f, j), "%s is listed twice", quote(v))
				good = false
			}
			seen[v] = true
		}
		ok = ok && good
		out[k.Value] = vals
	}
	return out, ok
}
