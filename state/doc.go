// Package state is hexcron's memory: a SQLite database (mattn/go-sqlite3) holding the
// trigger ledger shared by every process that triggers runs for one Hex user, every slot
// of every schedule with its state, run id, url, trace id, attempts and errors, and a
// little metadata (the daemon's last heartbeat). It knows nothing of HTTP, cron or YAML.
//
// Times are stored as integer unix milliseconds in UTC and returned in UTC. Every write
// that must be atomic with respect to other processes runs in one BEGIN IMMEDIATE
// transaction; the connection's busy_timeout makes concurrent writers wait instead of
// failing with SQLITE_BUSY.
package state
