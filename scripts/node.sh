#!/usr/bin/env bash
# Installs the npm packages of the end-to-end tests' JavaScript client (proxy/e2e/jssdk: matrix-js-sdk with its
# Rust-crypto WASM) idempotently into $TIMSTACK_CACHE/node/<hash>/node_modules (default cache:
# $HOME/.cache/timstack), and prints that node_modules path.
#
# Usage: scripts/node.sh [DIR]   (default: proxy/e2e/jssdk; DIR holds package.json and package-lock.json)
#
# The install is `npm ci` from the committed package-lock.json: every package and version is pinned by the lock
# file's integrity hashes, and the cache key is the hash of package.json + package-lock.json + the Node major
# version, so a changed lock file gets a fresh install next to the old one. No package has an install script
# (the lock file records none), so npm runs with --ignore-scripts. Concurrent callers (parallel test packages)
# serialise on a flock per key; a stamp file marks a completed install so an interrupted one is redone.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${1:-$here/../proxy/e2e/jssdk}"
cache="${TIMSTACK_CACHE:-$HOME/.cache/timstack}"
root="$cache/node"

log() { echo "node.sh: $*" >&2; }
die() { log "$*"; exit 1; }

command -v node >/dev/null 2>&1 || die "node (>= 20) is required"
command -v npm >/dev/null 2>&1 || die "npm is required"
command -v flock >/dev/null 2>&1 || die "flock (util-linux) is required"
[ -f "$dir/package.json" ] && [ -f "$dir/package-lock.json" ] || die "$dir needs package.json and package-lock.json"

major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$major" -ge 20 ] || die "node $(node --version) is too old: matrix-js-sdk 37.5.0 needs >= 20"
if grep -q '"hasInstallScript"' "$dir/package-lock.json"; then
	die "a locked package has an install script; review it before dropping --ignore-scripts"
fi

key="$(cat "$dir/package.json" "$dir/package-lock.json" <(echo "node$major") | sha256sum | cut -c1-16)"
target="$root/$key"
stamp="$target/.timstack-installed"

mkdir -p "$root"
exec 9>"$root/.lock-$key"
flock 9

if [ ! -f "$stamp" ] || [ ! -d "$target/node_modules" ]; then
	log "installing $(basename "$dir") npm packages into $target (npm ci, pinned by package-lock.json)"
	started=$(date +%s)
	tmp="$root/.tmp-$key-$$"
	rm -rf "$tmp"
	trap 'rm -rf "$tmp"' EXIT
	mkdir -p "$tmp"
	cp "$dir/package.json" "$dir/package-lock.json" "$tmp/"
	(cd "$tmp" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >&2 ||
		die "npm ci failed"
	rm -rf "$target"
	mv "$tmp" "$target"
	trap - EXIT
	touch "$stamp"
	log "installed in $(($(date +%s) - started)) s"
fi

echo "$target/node_modules"
