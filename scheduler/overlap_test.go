package scheduler

import (
	"strings"
	"testing"
)

func TestDecideOverlap(t *testing.T) {
	tests := []struct {
		policy string
		active int
		queued bool
		want   action
		reason string
	}{
		{OverlapSkip, 0, false, actFire, ""},
		{OverlapSkip, 1, false, actSkip, "overlap skip"},
		{"", 1, false, actSkip, "overlap skip"},
		{OverlapQueue, 0, true, actFire, ""},
		{OverlapQueue, 1, false, actQueue, "waits for run r1"},
		{OverlapQueue, 1, true, actSkip, "already waits"},
		{OverlapReplace, 1, false, actReplace, "cancels run r1"},
		{OverlapReplace, 0, false, actFire, ""},
		{OverlapAllow, 3, false, actFire, "allow"},
	}
	for _, tt := range tests {
		got, reason := decideOverlap(tt.policy, tt.active, tt.queued, "r1")
		if got != tt.want || !strings.Contains(reason, tt.reason) {
			t.Errorf("decideOverlap(%q, %d, %v) = %v %q, want %v containing %q",
				tt.policy, tt.active, tt.queued, got, reason, tt.want, tt.reason)
		}
	}
}
