#!/usr/bin/env bash
# make bench-proxy — the Messenger-Proxy's performance against issue 4's targets (homeservers-and-peers.md
# §5.3), next to a bare httputil.ReverseProxy, on this machine, in one run:
#
#   1. Go benchmarks: policy decisions (go test -bench Eval ./policy/) and the proxy's hot paths (token-cache
#      hit, decide() cached/uncached, client flow vs bare ReverseProxy; proxy/bench_test.go);
#   2. proxy/bench/cmd/benchproxy: a trivial upstream, a bare ReverseProxy and `timstack proxy` as separate
#      processes; closed-loop max throughput, then open-loop latency at half the timstack maximum, for a
#      decided PUT and a forwarded GET; idle /sync long-polls with the proxy's VmRSS; throughput and latency
#      in front of a real Synapse (installed by scripts/synapse.sh): direct, through a bare ReverseProxy and
#      through timstack.
#
# Prints one table (also saved as $BENCH_PROXY_DIR/report.md and report.json). About 6 minutes.
#
# Environment:
#   BENCH_PROXY_DIR   output folder (default /tmp/timstack-bench-proxy)
#   DURATION          length of each measured load (default 3s); WARMUP (default 1s)
#   LONGPOLLS         idle long-polls to hold (default 10000; capped by the descriptor limit)
#   SYNAPSE=0         skip the Synapse part
#   PIN_SYNAPSE=0     skip the second Synapse pass with Synapse pinned to its own CPU (taskset)
#   BENCHTIME         -benchtime of the Go benchmarks (default 1s)
#   TIMSTACK_ENV      extra environment for the timstack proxy processes only, e.g. "GOMEMLIMIT=200MiB"
#   BENCH_WAIT_LOAD   if set (e.g. 1.5), wait until the 1-minute load average is at most this, checking every
#                     60 s for up to BENCH_WAIT_MAX seconds (default 1200): the machine may be shared
set -euo pipefail
cd "$(dirname "$0")/.."

GO="${GO:-go}"
out="${BENCH_PROXY_DIR:-/tmp/timstack-bench-proxy}"
duration="${DURATION:-3s}"
warmup="${WARMUP:-1s}"
longpolls="${LONGPOLLS:-10000}"
synapse="${SYNAPSE:-1}"
benchtime="${BENCHTIME:-1s}"
log() { printf '[bench-proxy %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

mkdir -p "$out"
rm -rf "$out/run" "$out/run-pinned"

# Each proxied long-poll holds two descriptors in the proxy. Raise the soft limit as far as allowed; a
# container without CAP_SYS_RESOURCE stops at its hard limit, and benchproxy then caps the count and says so.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
log "descriptor limit $(ulimit -n)"

if [ -n "${BENCH_WAIT_LOAD:-}" ]; then
	waited=0
	max="${BENCH_WAIT_MAX:-1200}"
	while :; do
		load=$(cut -d' ' -f1 /proc/loadavg)
		if awk -v l="$load" -v m="$BENCH_WAIT_LOAD" 'BEGIN { exit !(l <= m) }'; then
			log "load average $load ≤ $BENCH_WAIT_LOAD after ${waited} s of waiting"
			break
		fi
		if [ "$waited" -ge "$max" ]; then
			log "load average still $load after ${waited} s; measuring anyway (the table shows the load)"
			break
		fi
		log "load average $load > $BENCH_WAIT_LOAD; waiting 60 s"
		sleep 60
		waited=$((waited + 60))
	done
fi

log "building timstack and benchproxy"
"$GO" build -o "$out/timstack" ./cmd/timstack
"$GO" build -o "$out/benchproxy" ./proxy/bench/cmd/benchproxy

if [ "$synapse" = 1 ]; then
	log "Synapse (scripts/synapse.sh, idempotent)"
	scripts/synapse.sh >/dev/null
fi

log "Go benchmarks: policy decisions"
"$GO" test -run '^$' -bench 'Eval' -benchmem -benchtime "$benchtime" -count 1 ./policy/ >"$out/policy-bench.txt" 2>&1 ||
	{ cat "$out/policy-bench.txt" >&2; exit 1; }
grep '^Benchmark' "$out/policy-bench.txt" >&2 || true
log "Go benchmarks: proxy hot paths"
"$GO" test -run '^$' -bench 'TokenCacheHit|Decide|ClientFlow' -benchmem -benchtime "$benchtime" -count 1 ./proxy/ >"$out/proxy-bench.txt" 2>&1 ||
	{ cat "$out/proxy-bench.txt" >&2; exit 1; }
grep '^Benchmark' "$out/proxy-bench.txt" >&2 || true

synapse_flag=true
[ "$synapse" = 1 ] || synapse_flag=false
log "load runs"
"$out/benchproxy" run --timstack "$out/timstack" --duration "$duration" --warmup "$warmup" --longpolls "$longpolls" \
	--synapse="$synapse_flag" --gobench "$out/policy-bench.txt,$out/proxy-bench.txt" \
	--timstack-env "${TIMSTACK_ENV:-}" --json "$out/report.json" --workdir "$out/run" | tee "$out/report.md"
if [ "$synapse" = 1 ] && [ "$(nproc)" -ge 2 ] && [ "${PIN_SYNAPSE:-1}" = 1 ]; then
	# On a small machine the load generator, the proxy and Synapse take turns on the same cores, and Synapse
	# (one Python core) loses whatever the other two take. A second pass gives Synapse a core of its own, as
	# a production homeserver has, so the proxy's own effect on Synapse's throughput shows.
	log "load runs in front of Synapse with Synapse pinned to its own CPU"
	"$out/benchproxy" run --timstack "$out/timstack" --duration "$duration" --warmup "$warmup" --only synapse \
		--pin-homeserver --timstack-env "${TIMSTACK_ENV:-}" --json "$out/report-pinned.json" --workdir "$out/run-pinned" |
		sed -n '/^### In front of Synapse\|^Synapse: /,$p' | tee -a "$out/report.md"
fi
# The decision logs of the runs hold a line per decided request; keep the configs and process logs only.
rm -f "$out"/run/*/decisions.jsonl "$out"/run-pinned/*/decisions.jsonl
log "report: $out/report.md (JSON: $out/report.json, process logs: $out/run)"
