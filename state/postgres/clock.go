package postgres

import (
	"context"
	"time"
)

// The ledger, owners and lease hold instants of the server's clock. serverNow reads it
// inside the caller's transaction and measures the offset between the caller's clock
// (ref: the instant the caller passed, or this process's clock for reads that take
// none) and the server's, so that instants can cross the API in the caller's frame:
// toServer(t) = t - off, fromServer(ms) = ms + off. With Options.ClientClock, the
// caller's instant is the server's (off = 0).

const serverNowSQL = `SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint`

// frame is the server instant of one operation and the caller's offset from it.
type frame struct {
	now int64         // the server's clock, unix ms
	off time.Duration // caller minus server
}

func (f frame) toServer(t time.Time) int64 { return t.Add(-f.off).UnixMilli() }

func (f frame) fromServer(ms int64) time.Time { return fromMS(ms).Add(f.off) }

func (f frame) fromServerNull(ms *int64) time.Time {
	if ms == nil {
		return time.Time{}
	}
	return f.fromServer(*ms)
}

// serverNow reads the server's clock (or takes ref's, with ClientClock).
func (db *DB) serverNow(ctx context.Context, q querier, ref time.Time) (frame, error) {
	if db.opts.ClientClock {
		return frame{now: ref.UnixMilli()}, nil
	}
	var ms int64
	if err := q.QueryRow(ctx, serverNowSQL).Scan(&ms); err != nil {
		return frame{}, d(err)
	}
	return frame{now: ms, off: time.Duration(ref.UnixMilli()-ms) * time.Millisecond}, nil
}

// readFrame is the frame of a read that takes no instant: this process's clock is
// the reference; with ClientClock the stored instants are returned as they are.
func (db *DB) readFrame(ctx context.Context, q querier) (frame, error) {
	if db.opts.ClientClock {
		return frame{}, nil
	}
	return db.serverNow(ctx, q, db.opts.Now())
}

func fromMS(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

func fromNullMS(ms *int64) time.Time {
	if ms == nil {
		return time.Time{}
	}
	return fromMS(*ms)
}

func nullMS(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	ms := t.UnixMilli()
	return &ms
}

func nullDuration(d time.Duration) *int64 {
	if d == 0 {
		return nil
	}
	ms := d.Milliseconds()
	return &ms
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
