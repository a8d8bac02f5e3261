#!/usr/bin/env bash
# Start or stop a throwaway PostgreSQL server on 127.0.0.1 for the tests.
#
#   scripts/postgres.sh start DIR PORT   prints the SQLAlchemy URL of a fresh database
#   scripts/postgres.sh stop DIR
#
# initdb and pg_ctl refuse to run as root, so as root the server runs as the `postgres`
# user in a folder it owns. fsync is off: the data is thrown away after the tests.
set -euo pipefail

action=${1:?usage: postgres.sh start DIR PORT | stop DIR}
dir=${2:?usage: postgres.sh start DIR PORT | stop DIR}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bin" ]; then
    echo "postgres.sh: no PostgreSQL server binaries under /usr/lib/postgresql; run 'apt-get install postgresql'" >&2
    exit 2
fi

as_owner() {
    if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$1"; else bash -c "$1"; fi
}

case "$action" in
    start)
        port=${3:?usage: postgres.sh start DIR PORT}
        mkdir -p "$dir"
        if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi
        as_owner "'$bin/initdb' -D '$dir/data' -A trust -U postgres --no-sync >'$dir/initdb.log' 2>&1"
        as_owner "'$bin/pg_ctl' -D '$dir/data' -l '$dir/server.log' -w \
            -o \"-p $port -k '$dir' -c listen_addresses=127.0.0.1 -c fsync=off\" start >/dev/null"
        echo "postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
        ;;
    stop)
        as_owner "'$bin/pg_ctl' -D '$dir/data' -m fast -w stop >/dev/null" || true
        ;;
    *)
        echo "postgres.sh: unknown action '$action' (expected start or stop)" >&2
        exit 2
        ;;
esac
