#!/usr/bin/env bash
# Starts or stops a throwaway MongoDB-wire server deployment for the
# server-path tests: one PostgreSQL 15 cluster in DIR, on a free loopback
# port, and a FerretDB frontend (internal/enginetest/ferretpg) over it.
#
#   scripts/server-deployment.sh start DIR   # prints the settings, writes DIR/env
#   scripts/server-deployment.sh stop DIR
#
# DIR/env, ready for `set -a; . DIR/env`, holds ARGON_TEST_URI (the
# frontend), ARGON_TEST_POSTGRESQL_URL (the store, for tests that start a
# second frontend over it once their collections exist: a FerretDB v1
# frontend never sees databases and collections created through another
# after it loaded its catalog) and ARGON_TEST_STORE=postgresql.
# PostgreSQL refuses to run as root, so as root the cluster runs as the
# postgres user that Debian's package creates. fsync is off: the cluster
# is thrown away after the run and no test kills PostgreSQL itself.
set -euo pipefail
cd "$(dirname "$0")/.."

cmd=${1:-}
dir=${2:-}
if [[ -z $cmd || -z $dir ]]; then
  echo "usage: $0 start|stop DIR" >&2
  exit 2
fi

pgbin=""
for d in /usr/lib/postgresql/*/bin; do
  [[ -x $d/pg_ctl ]] && pgbin=$d
done

as_pg() {
  if [[ $(id -u) == 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

stop() {
  for pidf in "$dir"/ferretpg*.pid; do
    [[ -f $pidf ]] || continue
    kill "$(cat "$pidf")" 2>/dev/null || true
    rm -f "$pidf"
  done
  if [[ -n $pgbin && -f $dir/pg/postmaster.pid ]]; then
    as_pg "$pgbin/pg_ctl" -D "$dir/pg" -m immediate -w stop >/dev/null 2>&1 || true
  fi
}

case $cmd in
stop)
  stop
  exit 0
  ;;
start) ;;
*)
  echo "usage: $0 start|stop DIR" >&2
  exit 2
  ;;
esac

if [[ -z $pgbin ]]; then
  echo "PostgreSQL server binaries not found under /usr/lib/postgresql; install Debian's postgresql package" >&2
  exit 1
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
[[ $(id -u) == 0 ]] && chown postgres "$dir"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
as_pg "$pgbin/initdb" -D "$dir/pg" -U argon --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log"
as_pg "$pgbin/pg_ctl" -D "$dir/pg" -l "$dir/pg.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=300" start >/dev/null
as_pg "$pgbin/createdb" -h 127.0.0.1 -p "$port" -U argon ferretdb

go build -o "$dir/ferretpg" ./internal/enginetest/ferretpg
pgurl="postgres://argon@127.0.0.1:$port/ferretdb"
rm -f "$dir/uri"
"$dir/ferretpg" -postgresql-url "$pgurl" -uri-file "$dir/uri" 2>"$dir/ferretpg.log" &
echo $! >"$dir/ferretpg.pid"
for _ in $(seq 600); do
  [[ -s $dir/uri ]] && break
  sleep 0.1
done
if [[ ! -s $dir/uri ]]; then
  echo "the frontend did not start; see $dir/ferretpg.log" >&2
  stop
  exit 1
fi
{
  echo "ARGON_TEST_URI=$(cat "$dir/uri")"
  echo "ARGON_TEST_POSTGRESQL_URL=$pgurl"
  echo "ARGON_TEST_STORE=postgresql"
} >"$dir/env"
cat "$dir/env"
