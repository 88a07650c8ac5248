package scheduler

import (
	"context"
	"time"

	"hexcron/hexclient"
)

// Hex is what the daemon needs of the Hex API client (*hexclient.Client).
type Hex interface {
	Trigger(ctx context.Context, req hexclient.TriggerRequest) (*hexclient.Triggered, error)
	Reconcile(ctx context.Context, projectID string, sentAfter time.Time, claimed func(string) bool) (*hexclient.RunStatus, error)
	GetRunStatus(ctx context.Context, projectID, runID string) (*hexclient.RunStatus, error)
	GetProjectRuns(ctx context.Context, projectID string, q hexclient.RunsQuery) (*hexclient.RunsPage, error)
	CancelRun(ctx context.Context, projectID, runID string) error
	KernelFreed()
	// ReleaseHolds lifts the holds of projects refused with 403 (on reload).
	ReleaseHolds() []string
	// ListProjects and GetProject serve the preflight (Check).
	CheckClient
}
