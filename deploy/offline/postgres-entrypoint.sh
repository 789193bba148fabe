#!/bin/sh
# First start (an empty PGDATA): initdb with POSTGRES_USER as the superuser and POSTGRES_PASSWORD as
# its password, then POSTGRES_DB, in single-user mode (no server listens before it is ready). Every
# start: the server on all addresses, local socket trusted, TCP by password, as the official image.
set -eu
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
if [ "${1:-}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required to make the cluster}"
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb --pgdata="$PGDATA" --username="$POSTGRES_USER" --pwfile="$pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  if [ "$POSTGRES_DB" != postgres ]; then
    # Identifiers are double-quoted; a quote inside one is doubled.
    db=$(printf '%s' "$POSTGRES_DB" | sed 's/"/""/g')
    owner=$(printf '%s' "$POSTGRES_USER" | sed 's/"/""/g')
    echo "CREATE DATABASE \"$db\" OWNER \"$owner\"" | postgres --single -D "$PGDATA" postgres >/dev/null
  fi
  echo "postgres-entrypoint: made the cluster in $PGDATA (user $POSTGRES_USER, database $POSTGRES_DB)"
fi
if [ "${1:-}" = postgres ]; then
  shift
  exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
fi
exec "$@"
