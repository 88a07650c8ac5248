// Package postgres is hexcron's state on a PostgreSQL server (jackc/pgx): the same
// contract as package state's SQLite database (the scheduler's Store, the ledger, the
// owners and the lease), for several hexcron processes on several machines sharing one
// Hex user's budget: an active daemon and its standbys, and `hexcron trigger` anywhere.
//
// Admission is one transaction serialised per budget by a transaction-scoped advisory
// lock (pg_advisory_xact_lock): read the window, decide, insert the attempt, claim the
// slot. The ledger, the owners and the lease are written and compared on the database
// server's clock (clock_timestamp()), so clock skew between machines never enters the
// budget or the lease; every instant crossing the API is translated between the
// caller's clock and the server's by the offset measured in the same transaction (see
// docs/state.md, "PostgreSQL").
//
// Connection loss is reported as state.ErrUnreachable; nothing an operation that failed
// that way meant to write is written (a transaction either commits or not).
package postgres
