// Package bench measures the Messenger-Proxy the way issue 4's performance targets are stated
// (homeservers-and-peers.md §5.3): added latency and throughput next to a bare httputil.ReverseProxy in front
// of a trivial upstream and in front of real Synapse, and the memory cost of idle /sync long-polls.
//
// It holds the parts that are worth testing on their own: a load generator with a closed-loop mode (N
// keep-alive connections as fast as they go, for maximum throughput) and an open-loop mode (a fixed request
// rate, for latency at a given load, measured from each request's intended start so a stalled server is not
// hidden by the generator waiting for it), a trivial homeserver stand-in, the bare baseline proxy, a fixture
// writer for a `timstack proxy` configuration, /proc readers for CPU time and RSS, and a parser for `go test
// -bench` output. cmd/benchproxy wires them into the table `make bench-proxy` prints.
//
// The package deliberately does not import package proxy, so that the proxy's own benchmarks may use it and
// the proxy under test runs as a separate process (its CPU time and RSS are then its alone).
package bench
