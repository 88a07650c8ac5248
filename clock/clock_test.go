package clock

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestScaledRunsFaster(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
		c := NewScaled(System{}, start, 60)
		time.Sleep(time.Second)
		if got, want := c.Now(), start.Add(time.Minute); !got.Equal(want) {
			t.Fatalf("after 1s real at speed 60: Now = %v, want %v", got, want)
		}
		before := time.Now()
		if err := Sleep(context.Background(), c, time.Hour); err != nil {
			t.Fatal(err)
		}
		if real := time.Since(before); real != time.Minute {
			t.Fatalf("sleeping 1h virtual took %v real, want 1m", real)
		}
		tm := c.NewTimer(2 * time.Minute)
		if !tm.Stop() {
			t.Fatal("Stop on a pending timer reported false")
		}
	})
}

func TestWithTimeoutScaled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewScaled(System{}, time.Unix(0, 0), 10)
		ctx, cancel := WithTimeout(context.Background(), c, 10*time.Second)
		defer cancel()
		before := time.Now()
		<-ctx.Done()
		if real := time.Since(before); real != time.Second {
			t.Fatalf("10s virtual timeout took %v real, want 1s", real)
		}
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Fatalf("err = %v, want DeadlineExceeded", ctx.Err())
		}
	})
}

func TestSleepCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, System{}, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep on cancelled ctx = %v", err)
	}
}
