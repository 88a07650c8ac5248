package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBaseURLRefusedBeforeAnythingIsCreated: a base_url with a query, a fragment or a
// path other than Hex's API root fails validate and run with the same message, and run
// creates no database file.
func TestBaseURLRefusedBeforeAnythingIsCreated(t *testing.T) {
	for _, base := range []string{"https://app.hex.tech/api/v1?x=1", "https://app.hex.tech/api/v1#frag", "https://app.hex.tech/projects"} {
		t.Run(base, func(t *testing.T) {
			dir := t.TempDir()
			conf := filepath.Join(dir, "schedules.yaml")
			yaml := "hex:\n  base_url: " + base + "\nschedules:\n  - {name: a, project: " + triggerProject + ", cron: \"0 * * * *\"}\n"
			if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			e, _, verr := testEnv(t, time.Now(), map[string]string{"HEX_API_TOKEN": "hxtp_x"})
			if code := run([]string{"validate", "--config", conf}, e); code != exitError {
				t.Fatalf("validate exit %d, want %d", code, exitError)
			}
			want := conf + ":2: hex.base_url: "
			if !strings.Contains(verr.String(), want) {
				t.Fatalf("validate said %q, want %q", verr.String(), want)
			}
			db := filepath.Join(dir, "hexcron.db")
			e, _, rerr := testEnv(t, time.Now(), map[string]string{"HEX_API_TOKEN": "hxtp_x"})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if code := runDaemon(ctx, e, []string{"--config", conf, "--db", db, "--log-format", "text"}, nil); code != exitConfig {
				t.Fatalf("run exit %d, want %d (EX_CONFIG)", code, exitConfig)
			}
			if !strings.Contains(rerr.String(), "hex.base_url") {
				t.Fatalf("run said %q, want the base_url problem", rerr.String())
			}
			if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("run left a database file behind: %v", err)
			}
		})
	}
}
