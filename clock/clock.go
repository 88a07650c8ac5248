// Package clock is the one notion of time shared by the daemon, the Hex client and
// hexsim. Logic never calls time.Now directly: it asks a Clock, so that tests (under
// testing/synctest) and `hexcron run --simulate --speed N` can run time faster.
package clock

import (
	"context"
	"sync"
	"time"
)

// Clock tells the time and makes timers.
type Clock interface {
	// Now returns the current instant.
	Now() time.Time
	// NewTimer returns a timer that fires once after d.
	NewTimer(d time.Duration) Timer
	// AfterFunc calls f in its own goroutine after d.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is the part of *time.Timer that logic needs.
type Timer interface {
	// C returns the channel on which the timer's firing time is delivered
	// (nil for timers made by AfterFunc).
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it was still pending.
	Stop() bool
}

// System is the real clock (and, inside a synctest bubble, the bubble's fake clock).
type System struct{}

// Now returns time.Now().
func (System) Now() time.Time { return time.Now() }

// NewTimer returns a real timer.
func (System) NewTimer(d time.Duration) Timer { return sysTimer{time.NewTimer(d)} }

// AfterFunc wraps time.AfterFunc.
func (System) AfterFunc(d time.Duration, f func()) Timer { return sysTimer{time.AfterFunc(d, f)} }

type sysTimer struct{ t *time.Timer }

func (s sysTimer) C() <-chan time.Time { return s.t.C }
func (s sysTimer) Stop() bool          { return s.t.Stop() }

// Scaled is a virtual clock that runs Speed times faster than its base clock, starting
// at Start. It is what `hexcron run --simulate --speed N` runs on.
type Scaled struct {
	base      Clock
	start     time.Time
	baseStart time.Time
	speed     float64
}

// NewScaled returns a clock that reads start now and then advances speed times faster
// than base. A speed of 0 or less means 1.
func NewScaled(base Clock, start time.Time, speed float64) *Scaled {
	if speed <= 0 {
		speed = 1
	}
	return &Scaled{base: base, start: start, baseStart: base.Now(), speed: speed}
}

// Now returns the virtual instant.
func (s *Scaled) Now() time.Time {
	elapsed := s.base.Now().Sub(s.baseStart)
	return s.start.Add(time.Duration(float64(elapsed) * s.speed))
}

// Speed returns how many virtual seconds pass per real second.
func (s *Scaled) Speed() float64 { return s.speed }

func (s *Scaled) real(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(float64(d) / s.speed)
}

// NewTimer returns a timer that fires after d of virtual time.
func (s *Scaled) NewTimer(d time.Duration) Timer {
	base := s.base.NewTimer(s.real(d))
	t := &scaledTimer{base: base, c: make(chan time.Time, 1), done: make(chan struct{})}
	go func() {
		select {
		case <-base.C():
			t.c <- s.Now()
		case <-t.done:
		}
	}()
	return t
}

// AfterFunc calls f after d of virtual time.
func (s *Scaled) AfterFunc(d time.Duration, f func()) Timer {
	return s.base.AfterFunc(s.real(d), f)
}

type scaledTimer struct {
	base Timer
	c    chan time.Time
	once sync.Once
	done chan struct{}
}

func (t *scaledTimer) C() <-chan time.Time { return t.c }
func (t *scaledTimer) Stop() bool {
	stopped := t.base.Stop()
	t.once.Do(func() { close(t.done) })
	return stopped
}

// Sleep waits for d on c, or until ctx is done (then it returns ctx's error).
func Sleep(ctx context.Context, c Clock, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := c.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C():
		return nil
	}
}

// WithTimeout is context.WithTimeout measured on c, so that per-attempt timeouts
// shrink with a virtual clock. The context's error is context.DeadlineExceeded when
// the timeout passes, as with context.WithTimeout.
func WithTimeout(ctx context.Context, c Clock, d time.Duration) (context.Context, context.CancelFunc) {
	if s, ok := c.(*Scaled); ok {
		if _, sys := s.base.(System); sys {
			return context.WithTimeout(ctx, s.real(d))
		}
	}
	return context.WithTimeout(ctx, d)
}
