#!/usr/bin/env bash
# make bench-directory SCALE=full|tenth|fiftieth [ENGINE=postgres|sqlite] [DURATION=15s]
#
# Generates the synthetic data set (directory generate), imports it into PostgreSQL (a private cluster run
# as an unprivileged user, kept between runs) or SQLite, and measures the query classes of the spec's
# performance table (timstack directory bench). Resumable: every finished step leaves a marker in the
# state folder, and an interrupted import resumes after its last committed batch. Checks free disk first.
# Not part of make test. Only loopback and a Unix socket are used.
set -euo pipefail
cd "$(dirname "$0")/.."

scale="${SCALE:-fiftieth}"
engine="${ENGINE:-postgres}"
duration="${DURATION:-15s}"
case "$scale" in
full) need_gb=20 ;;
tenth) need_gb=4 ;;
fiftieth) need_gb=2 ;;
*) echo "bench-directory: SCALE must be full, tenth or fiftieth" >&2; exit 2 ;;
esac
case "$engine" in postgres | sqlite) ;; *) echo "bench-directory: ENGINE must be postgres or sqlite" >&2; exit 2 ;; esac

# PostgreSQL runs as an unprivileged user, so the state lives where that user can reach it.
state="${TIMSTACK_BENCH_DIR:-/var/tmp/timstack-bench}/$scale"
mkdir -p "$state"
avail_kb=$(df -Pk "$state" | awk 'NR==2 {print $4}')
if [ "$avail_kb" -lt $((need_gb * 1024 * 1024)) ] && [ ! -f "$state/import-$engine.done" ]; then
	echo "bench-directory: $scale needs about ${need_gb} GB free in $state, only $((avail_kb / 1024 / 1024)) GB available" >&2
	exit 1
fi

bin=bin/timstack
go build -o "$bin" ./cmd/timstack
log() { printf '[bench-directory %s %s] %s\n' "$scale" "$engine" "$*" >&2; }

data="$state/data.ndjson"
if [ ! -f "$data.done" ]; then
	log "generating $scale data set"
	"$bin" directory generate --seed 1 --scale "$scale" --out "$data.tmp" | tee "$state/generate.json" >&2
	mv "$data.tmp" "$data"
	touch "$data.done"
fi

pg_stop() { :; }
if [ "$engine" = postgres ]; then
	scripts/postgres.sh
	pgbin=/usr/lib/postgresql/15/bin
	pgdata="$state/pg"
	sock="$state/sock"
	user=$(id -un)
	run_pg() { "$@"; }
	if [ "$(id -u)" -eq 0 ]; then
		user=nobody
		run_pg() { runuser -u nobody -- "$@"; }
		chmod 755 "$state"
	fi
	mkdir -p "$sock"
	if [ ! -f "$pgdata/PG_VERSION" ]; then
		log "initdb (as $user)"
		rm -rf "$pgdata"
		mkdir -p "$pgdata"
		[ "$(id -u)" -eq 0 ] && chown nobody "$pgdata" "$sock"
		run_pg "$pgbin/initdb" -D "$pgdata" -U "$user" --auth=trust --no-sync >/dev/null
	fi
	[ "$(id -u)" -eq 0 ] && chown nobody "$sock"
	log "starting PostgreSQL on a Unix socket"
	run_pg "$pgbin/pg_ctl" -D "$pgdata" -l "$pgdata/server.log" -w -o "-k $sock -c listen_addresses='' -c shared_buffers=2GB -c max_wal_size=8GB -c synchronous_commit=off" start >/dev/null
	pg_stop() { run_pg "$pgbin/pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null || true; }
	trap pg_stop EXIT
	if ! run_pg /usr/bin/psql -h "$sock" -U "$user" -d postgres -tAc "select 1 from pg_database where datname='bench'" 2>/dev/null | grep -q 1; then
		run_pg /usr/bin/createdb -h "$sock" -U "$user" bench
	fi
	dsn="postgres://$user@/bench?host=$sock"
else
	dsn="sqlite:$state/directory.db"
fi

if [ ! -f "$state/import-$engine.done" ]; then
	skip=$(cat "$state/import-$engine.progress" 2>/dev/null || echo 0)
	log "importing (resuming after $skip resources)"
	bulk=()
	# An initial PostgreSQL load drops the value indexes and rebuilds them at the end (resumable with --skip).
	[ "$engine" = postgres ] && bulk=(--bulk)
	"$bin" directory import --db "$dsn" "${bulk[@]}" --skip "$skip" --progress-file "$state/import-$engine.progress" "$data" | tee "$state/import-$engine.json" >&2
	if [ "$engine" = postgres ]; then
		run_pg /usr/bin/psql -h "$sock" -U "$user" -d bench -qc 'VACUUM ANALYZE' >/dev/null
	fi
	touch "$state/import-$engine.done"
fi

log "measuring (DURATION=$duration per class)"
"$bin" directory bench --db "$dsn" --duration "$duration" | tee "$state/bench-$engine.json"
