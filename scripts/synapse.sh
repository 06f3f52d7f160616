#!/usr/bin/env bash
# Installs a pinned Synapse (matrix-synapse from PyPI) for the end-to-end tests, idempotently, into
# $TIMSTACK_CACHE/synapse/<version> (default cache: $HOME/.cache/timstack), and builds a migrated template SQLite
# database there once per version (template.db): a fresh Synapse spends tens of seconds migrating an empty
# database, a copy of the template starts in a few. Prints the venv directory (the template is <venv>/template.db).
#
# Usage: scripts/synapse.sh [VERSION]   (default 1.163.2, the version scripts/synapse-constraints.txt pins)
#
# Every transitive dependency is pinned by scripts/synapse-constraints.txt (pip freeze of a working venv); for
# another VERSION the constraints apply minus their matrix-synapse line, and pip fails loudly on a conflict.
# The template is server-name neutral: Synapse only ties a database to a server_name through rows in `users`,
# and the template has none (checked below), so one template serves every server name.
# Concurrent callers (parallel test packages) serialise on a flock per version; stamp files mark completed steps
# so an interrupted install or template build is redone rather than trusted.
set -euo pipefail

VERSION="${1:-1.163.2}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
constraints="$here/synapse-constraints.txt"
cache="${TIMSTACK_CACHE:-$HOME/.cache/timstack}"
root="$cache/synapse"
venv="$root/$VERSION"
install_stamp="$venv/.timstack-installed"
template="$venv/template.db"
template_stamp="$venv/.timstack-template"

log() { echo "synapse.sh: $*" >&2; }
die() { log "$*"; exit 1; }

case "$VERSION" in
*[!0-9.a-z]* | "") die "bad version '$VERSION'" ;;
esac
[ -f "$constraints" ] || die "missing $constraints"
command -v flock >/dev/null 2>&1 || die "flock (util-linux) is required"

mkdir -p "$root"
exec 9>"$root/.lock-$VERSION"
flock 9

pick_python() {
	local py
	for py in python3 python3.13 python3.12 python3.11 python3.10; do
		if command -v "$py" >/dev/null 2>&1 &&
			"$py" -c 'import sys, venv, ensurepip; sys.exit(0 if (3, 10) <= sys.version_info < (4,) else 1)' 2>/dev/null; then
			echo "$py"
			return 0
		fi
	done
	return 1
}

if [ ! -f "$install_stamp" ]; then
	py="$(pick_python)" || die "Synapse needs Python >= 3.10 with the venv and ensurepip modules (Debian: apt-get install python3-venv)"
	log "installing matrix-synapse $VERSION into $venv (pinned by $constraints)"
	started=$(date +%s)
	tmp="$root/.tmp-$VERSION-$$"
	rm -rf "$tmp"
	trap 'rm -rf "$tmp"' EXIT
	"$py" -m venv "$tmp"
	grep -v -i '^matrix-synapse==' "$constraints" >"$tmp/constraints.txt"
	# the venv is moved into place after pip finished; `bin/python -m ...` still works from the new path
	# (pip's console scripts would not, which is why nothing here calls them)
	"$tmp/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
		-c "$tmp/constraints.txt" "matrix-synapse==$VERSION" >&2
	"$tmp/bin/python" -c "import synapse, sys; sys.exit(0 if synapse.__version__ == '$VERSION' else 1)" ||
		die "installed Synapse does not report version $VERSION"
	rm -rf "$venv"
	mv "$tmp" "$venv"
	trap - EXIT
	touch "$install_stamp"
	log "installed in $(($(date +%s) - started)) s"
fi

if [ ! -f "$template_stamp" ] || [ ! -f "$template" ]; then
	log "building the migrated template database for Synapse $VERSION"
	started=$(date +%s)
	scratch="$(mktemp -d "$root/.template-$VERSION-XXXXXX")"
	pid=""
	cleanup() {
		if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
			kill -KILL "$pid" 2>/dev/null || true
		fi
		rm -rf "$scratch"
	}
	trap cleanup EXIT
	py="$venv/bin/python"
	port="$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
	# JSON is YAML: no quoting surprises in paths
	cat >"$scratch/homeserver.yaml" <<EOF
{
  "server_name": "template.invalid",
  "pid_file": "$scratch/homeserver.pid",
  "signing_key_path": "$scratch/signing.key",
  "report_stats": false,
  "trusted_key_servers": [],
  "suppress_key_server_warning": true,
  "media_store_path": "$scratch/media",
  "database": {"name": "sqlite3", "args": {"database": "$scratch/homeserver.db"}},
  "background_updates": {"sleep_enabled": false, "background_update_duration_ms": 1000, "min_batch_size": 1000, "default_batch_size": 1000},
  "listeners": [{"port": $port, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": false,
                 "resources": [{"names": ["client"], "compress": false}]}]
}
EOF
	"$py" -m synapse.app.homeserver -c "$scratch/homeserver.yaml" --generate-keys >"$scratch/stdout.log" 2>&1 ||
		{ tail -n 30 "$scratch/stdout.log" >&2; die "generating the scratch signing key failed"; }
	"$py" -m synapse.app.homeserver -c "$scratch/homeserver.yaml" >>"$scratch/stdout.log" 2>&1 &
	pid=$!
	healthy=""
	for _ in $(seq 1 600); do
		if ! kill -0 "$pid" 2>/dev/null; then
			break
		fi
		if "$py" -c "import urllib.request, sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:$port/health', timeout=2).status == 200 else 1)" 2>/dev/null; then
			healthy=1
			break
		fi
		sleep 0.5
	done
	if [ -z "$healthy" ]; then
		tail -n 40 "$scratch/stdout.log" >&2
		die "scratch Synapse did not become healthy on 127.0.0.1:$port"
	fi
	# A new database queues background updates (56 in 1.163) that every copy would otherwise run at start-up;
	# let the scratch server finish them (bounded: a template with some left is still correct, only slower).
	for _ in $(seq 1 240); do
		left="$("$py" -c "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT count(*) FROM background_updates').fetchone()[0])" "$scratch/homeserver.db" 2>/dev/null || echo "?")"
		[ "$left" = "0" ] && break
		sleep 0.5
	done
	[ "$left" = "0" ] || log "template keeps $left unfinished background updates"
	kill -TERM "$pid"
	for _ in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
	pid=""
	# Synapse runs SQLite in WAL mode: the backup API folds the WAL in and yields one self-contained file.
	"$py" - "$scratch/homeserver.db" "$template.tmp" <<'EOF'
import sqlite3, sys
src = sqlite3.connect(sys.argv[1])
if src.execute("SELECT count(*) FROM users").fetchone()[0] != 0:
    sys.exit("template has users: it would be tied to the scratch server_name")
dst = sqlite3.connect(sys.argv[2])
src.backup(dst)
dst.execute("PRAGMA journal_mode = DELETE")
dst.close()
src.close()
EOF
	mv "$template.tmp" "$template"
	touch "$template_stamp"
	cleanup
	trap - EXIT
	log "template built in $(($(date +%s) - started)) s"
fi

echo "$venv"
