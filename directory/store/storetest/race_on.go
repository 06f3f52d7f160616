//go:build race

package storetest

// raceEnabled shrinks the bulk case under the race detector, which slows the pure-Go SQLite engine about
// fifteenfold; the full size runs in every non-race run.
const raceEnabled = true
