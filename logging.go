package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/lmittmann/tint"

	"hexcron/clock"
)

// newLogger builds the daemon's logger: tint with colour when w is a terminal, plain
// logfmt-style text otherwise (journald adds its own timestamp, but the text keeps one
// so that a log file alone is readable), JSON with --log-format json. Under journald
// ($JOURNAL_STREAM set) each line, text or JSON, starts with its syslog priority (<3>
// error, <4> warning, <6> info, <7> debug), so `journalctl -p warning` works.
func newLogger(w io.Writer, format, level string, getenv func(string) string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	switch strings.ToLower(format) {
	case "", "auto":
		if isTerminal(w) {
			return slog.New(tint.NewTextHandler(w, &tint.Options{Level: lvl, TimeFormat: time.TimeOnly})), nil
		}
		fallthrough
	case "text":
		opts := &slog.HandlerOptions{Level: lvl}
		if getenv("JOURNAL_STREAM") != "" {
			return slog.New(newJournalHandler(w, opts, textHandler)), nil
		}
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		opts := &slog.HandlerOptions{Level: lvl}
		if getenv("JOURNAL_STREAM") != "" {
			return slog.New(newJournalHandler(w, opts, jsonHandler)), nil
		}
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want auto, text or json", format)
}

// isTerminal reports whether w is a character device (a terminal), without a
// dependency: journald and pipes are not.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// journalHandler writes log lines (text or JSON) prefixed with their syslog priority,
// which journald reads (SyslogLevelPrefix=, on by default) and strips.
type journalHandler struct{ hs [4]slog.Handler } // debug, info, warn, error

func textHandler(w io.Writer, o *slog.HandlerOptions) slog.Handler { return slog.NewTextHandler(w, o) }
func jsonHandler(w io.Writer, o *slog.HandlerOptions) slog.Handler { return slog.NewJSONHandler(w, o) }

func newJournalHandler(w io.Writer, opts *slog.HandlerOptions, mk func(io.Writer, *slog.HandlerOptions) slog.Handler) journalHandler {
	var h journalHandler
	for i, p := range []string{"<7>", "<6>", "<4>", "<3>"} {
		h.hs[i] = mk(prefixWriter{prefix: []byte(p), w: w}, opts)
	}
	return h
}

func (h journalHandler) pick(l slog.Level) slog.Handler {
	switch {
	case l >= slog.LevelError:
		return h.hs[3]
	case l >= slog.LevelWarn:
		return h.hs[2]
	case l >= slog.LevelInfo:
		return h.hs[1]
	}
	return h.hs[0]
}

func (h journalHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.pick(l).Enabled(ctx, l)
}

func (h journalHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.pick(r.Level).Handle(ctx, r)
}

func (h journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	var out journalHandler
	for i := range h.hs {
		out.hs[i] = h.hs[i].WithAttrs(as)
	}
	return out
}

func (h journalHandler) WithGroup(name string) slog.Handler {
	var out journalHandler
	for i := range h.hs {
		out.hs[i] = h.hs[i].WithGroup(name)
	}
	return out
}

// prefixWriter writes prefix before every write (slog handlers write one record per call).
type prefixWriter struct {
	prefix []byte
	w      io.Writer
}

func (p prefixWriter) Write(b []byte) (int, error) {
	if _, err := p.w.Write(append(append([]byte(nil), p.prefix...), b...)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// clockHandler stamps records with a (virtual) clock's time, so that the log of
// `run --simulate` reads in simulated time, and shows each record's time in the
// config's default zone, the one the daemon shows every instant of a line in: one
// time zone per line.
type clockHandler struct {
	slog.Handler
	clk clock.Clock    // nil: the record's own time
	loc *time.Location // the zone to show times in (nil: as the clock gives them)
}

func (h clockHandler) Handle(ctx context.Context, r slog.Record) error {
	if h.clk != nil {
		r.Time = h.clk.Now()
	}
	if h.loc != nil {
		r.Time = r.Time.In(h.loc)
	}
	return h.Handler.Handle(ctx, r)
}

func (h clockHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return clockHandler{h.Handler.WithAttrs(as), h.clk, h.loc}
}

func (h clockHandler) WithGroup(name string) slog.Handler {
	return clockHandler{h.Handler.WithGroup(name), h.clk, h.loc}
}
