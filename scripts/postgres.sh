#!/usr/bin/env bash
# Installs the PostgreSQL server the storage tests start (directory/store/pgtest runs initdb + postgres from
# /usr/lib/postgresql/15/bin), idempotently: nothing happens when PostgreSQL 15 is already there. Pinned to
# major version 15 (Debian bookworm's postgresql-15). Tests that are given TIMSTACK_TEST_PG_DSN need none of it.
set -euo pipefail

PG_MAJOR=15
bin="/usr/lib/postgresql/$PG_MAJOR/bin"

if [ -x "$bin/initdb" ] && [ -x "$bin/postgres" ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "postgres.sh: PostgreSQL $PG_MAJOR is missing; install it (Debian: apt-get install postgresql-$PG_MAJOR) or set TIMSTACK_TEST_PG_DSN" >&2
	exit 1
fi
echo "postgres.sh: installing postgresql-$PG_MAJOR" >&2
apt-get update -qq >&2
# only the server binaries are needed: no cluster is created or started here (tests initdb their own)
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "postgresql-$PG_MAJOR" >&2
if [ ! -x "$bin/initdb" ]; then
	echo "postgres.sh: postgresql-$PG_MAJOR installed but $bin/initdb is missing" >&2
	exit 1
fi
