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
# apt_install PKG...: Debian packages the tests need, installed only when missing (root on our machines).
apt_install() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "tools.sh: missing $*; install it (Debian: apt-get install $*)" >&2
		exit 1
	fi
	echo "tools.sh: installing Debian packages: $*" >&2
	apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}
need go
# certs tests cross-check signatures, certificates, OCSP and ECDH with an independent implementation: OpenSSL 3.
command -v openssl >/dev/null 2>&1 || apt_install openssl

stamp="$bin/.staticcheck-$STATICCHECK_VERSION"
if [ ! -x "$bin/staticcheck" ] || [ ! -f "$stamp" ]; then
	echo "tools.sh: installing staticcheck $STATICCHECK_VERSION into $bin" >&2
	GOBIN="$bin" GOFLAGS=-mod=mod go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
	rm -f "$bin"/.staticcheck-*
	touch "$stamp"
fi
echo "$bin"
