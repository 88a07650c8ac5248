package bench

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

func TestPlannerConfigSizes(t *testing.T) {
	for _, caps := range []string{"fits", "hex"} {
		_, _, res, err := plannerOnce(1000, caps)
		if err != nil {
			t.Fatal(err)
		}
		if placed := len(res.Firings); caps == "fits" && placed != 1000 || caps == "hex" && placed >= 1000 {
			t.Fatalf("%s: %d of 1000 placed", caps, placed)
		}
	}
	if _, _, _, err := plannerOnce(1000, "loose"); err == nil {
		t.Fatal("unknown caps accepted")
	}
}

func TestAdmitLoopRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hexcron.db")
	r, err := AdmitLoop(context.Background(), path, 100*time.Millisecond, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if r.Admitted == 0 || r.Admitted != r.Calls {
		t.Fatalf("%+v", r)
	}
}
