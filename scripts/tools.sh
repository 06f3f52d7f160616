#!/usr/bin/env bash
# Installs the pinned developer tools timstack's checks need, idempotently, into a cache under $HOME that
# survives between CI runs (CI starts from a fresh clone, never from a fresh $HOME cache).
# Prints the directory holding the tools.
set -euo pipefail

STATICCHECK_VERSION=v0.8.2 # staticcheck 2026.2.2, supports Go 1.26

cache="${TIMSTACK_CACHE:-$HOME/.cache/timstack}"
bin="$cache/tools/bin"
mkdir -p "$bin"

need() { command -v "$1" >/dev/null 2>&1 || { echo "tools.sh: $1 is required but not installed" >&2; exit 1; }; }
need go
need openssl # certs tests cross-check signatures, certificates and ECDH with OpenSSL

stamp="$bin/.staticcheck-$STATICCHECK_VERSION"
if [ ! -x "$bin/staticcheck" ] || [ ! -f "$stamp" ]; then
	echo "tools.sh: installing staticcheck $STATICCHECK_VERSION into $bin" >&2
	GOBIN="$bin" GOFLAGS=-mod=mod go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
	rm -f "$bin"/.staticcheck-*
	touch "$stamp"
fi
echo "$bin"
