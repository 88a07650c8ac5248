// Package gateway is hexcron's trigger gateway: an HTTP server, inside `hexcron run`,
// that CI jobs and people ask for Hex runs instead of calling Hex themselves, so that
// every trigger of the Hex user goes through the daemon's one ledger and plan.
//
// It speaks Hex's API where tools expect it (POST /api/v1/projects/{id}/runs and the
// legacy /api/v1/project/{id}/run, GET and DELETE of a run), so that Airflow's and
// dagster's Hex providers only change their base URL and token, plus a native
// POST /v1/schedules/{name}/trigger. It authenticates clients by the SHA-256 of their
// token (compared in constant time; the token is never logged nor kept), checks what
// each client may run, bounds and decodes request bodies, and reads the
// Idempotency-Key and X-Hexcron-Wait headers. Everything else — the slot, the
// idempotency record, the quota, the plan and the trigger — is the Backend's (the
// daemon, wired in by main): the gateway imports nothing of hexcron.
package gateway
