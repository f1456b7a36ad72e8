#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server for the tests (installing Debian's package when absent)
# and exports LATCHKEY_TEST_DATABASE_URL. Source it: `. .ci/postgres.sh`.
set -euo pipefail

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

if [ -z "$(pg_bin)" ] || [ ! -x "$(pg_bin)/initdb" ]; then
  echo "ci: installing PostgreSQL from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
fi
BIN=$(pg_bin)
PGPORT_CI=${LATCHKEY_CI_PGPORT:-55432}
PGDIR=${LATCHKEY_CI_PGDIR:-/tmp/latchkey-ci-pg}
RUN_AS=(runuser -u postgres --)
[ "$(id -u)" = 0 ] || RUN_AS=()

if ! "${RUN_AS[@]}" "$BIN/pg_ctl" -D "$PGDIR" status >/dev/null 2>&1; then
  rm -rf "$PGDIR"
  mkdir -p "$PGDIR"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$PGDIR"
  "${RUN_AS[@]}" "$BIN/initdb" -D "$PGDIR" -U postgres -A trust --no-sync >/dev/null
  "${RUN_AS[@]}" "$BIN/pg_ctl" -D "$PGDIR" -l "$PGDIR/server.log" -w \
    -o "-p $PGPORT_CI -c listen_addresses=127.0.0.1 -k $PGDIR -c fsync=off -c max_connections=200" start >/dev/null
fi
export LATCHKEY_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PGPORT_CI/postgres"
echo "ci: PostgreSQL ($("$BIN/postgres" --version)) at $LATCHKEY_TEST_DATABASE_URL"
