#!/bin/sh
# The db container: a cluster in the volume on first start (database pbx), then PostgreSQL
# in the foreground as PID 1, listening on its Unix socket only.
set -eu
PGDATA=/var/lib/postgresql/data
BIN=/usr/lib/postgresql/15/bin
SOCKET_DIR=/run/pbx-db
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  # trust on the socket alone: only containers that mount the socket volume reach it.
  "$BIN/initdb" -D "$PGDATA" -U postgres -E UTF8 --no-locale --auth-local=trust --auth-host=reject
  echo "CREATE DATABASE pbx" | "$BIN/postgres" --single -D "$PGDATA" postgres >/dev/null
fi
exec "$BIN/postgres" -D "$PGDATA" -c listen_addresses='' -c unix_socket_directories="$SOCKET_DIR" \
  -c max_connections=100 -c log_line_prefix='%m [%p] ' "$@"
