// Package hexsim is a fake Hex API server for tests, demos and benchmarks.
//
// It implements the public Hex API as described in shared/reference/hex-api.md:
// RunProject, GetRunStatus, GetProjectRuns, CancelRun, ListProjects and GetProject on
// both the current plural paths (/api/v1/projects/{id}/runs...) and the legacy singular
// ones (/api/v1/project/{id}/run...), bearer tokens that can be rotated, a project
// registry, Hex's per-user limits under a selectable window model, a lazily computed
// run lifecycle, and injectable faults (5xx before or after creating a run, a delayed
// response, a dropped connection, 409, 422, ...). Every request it receives is kept in a
// ledger that tests read with Requests and Runs, or over HTTP from /_sim/requests and
// /_sim/runs.
//
// Time comes only from the injected clock.Clock and randomness only from the seed, so a
// test inside a testing/synctest bubble is deterministic. PipeNet gives such a test an
// in-memory network so that real HTTP clients can talk to the server without sockets.
//
// hexsim is a test tool: its /_sim debug endpoints need no token. It does not import
// hexcron/hexclient; it is an independent fake of Hex's server.
package hexsim
