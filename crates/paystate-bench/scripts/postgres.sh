#!/usr/bin/env bash
# A throwaway PostgreSQL for the benchmarks.
#
#   postgres.sh start DIR   initialise a cluster in DIR/data, start it listening only on a unix
#                           socket in DIR, print its connection string
#   postgres.sh stop DIR    stop it (the caller removes DIR)
#
# Durability is PostgreSQL's default and stated explicitly: fsync=on, synchronous_commit=on.
# When no PostgreSQL is installed, Debian's `postgresql` package is installed with apt-get
# (needs root). PostgreSQL refuses to run as root, so as root it runs as the `postgres` user.
set -euo pipefail

usage="usage: postgres.sh start|stop DIR"
command=${1:?$usage}
dir=${2:?$usage}

find_bindir() {
    if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
        pg_config --bindir
        return 0
    fi
    local candidate
    for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$candidate/initdb" ]; then
            echo "$candidate"
            return 0
        fi
    done
    if command -v initdb >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v initdb)")"
        return 0
    fi
    return 1
}

if ! bindir=$(find_bindir); then
    echo "postgres.sh: no PostgreSQL found; installing Debian's postgresql package" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    bindir=$(find_bindir)
fi

as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

case $command in
start)
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --home-dir "$dir" postgres
        chown postgres: "$dir"
    fi
    as_owner "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 >"$dir/initdb.log"
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
        -o "-c listen_addresses='' -c unix_socket_directories='$dir' -c fsync=on -c synchronous_commit=on -c max_connections=200" \
        start >/dev/null
    echo "host=$dir user=postgres dbname=postgres"
    ;;
stop)
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null
    ;;
version)
    "$bindir/postgres" --version
    ;;
*)
    echo "$usage" >&2
    exit 2
    ;;
esac
