// Package bench holds hexcron's performance experiments, shared by the tests that
// assert on them and by cmd/hexbench, which prints the table in docs/performance.md.
//
// Every experiment takes its clock as an argument: the tests run them inside a
// testing/synctest bubble (clock.System is then the bubble's virtual clock, so eight
// simulated hours take a second or two), and cmd/hexbench, which cannot use synctest,
// runs them on a clock.Scaled virtual clock.
package bench
