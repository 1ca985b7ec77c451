#!/usr/bin/env bash
# Builds argon and runs its main job on the embedded engine, in a fresh
# temporary workspace: init, writes, a branch, isolation, history, then
# diff, merge, revert and reset.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bin
echo "building argon (the first build downloads its modules and compiles the embedded engine: a few minutes)..." >&2
# -buildvcs=auto: argon version names the commit even where GOFLAGS turns
# VCS stamping off (it is skipped when there is no git checkout).
go build -buildvcs=auto -o bin/argon .
echo "built bin/argon ($(bin/argon version))" >&2
argon="$PWD/bin/argon"
ws=$(mktemp -d)
trap 'rm -rf "$ws"' EXIT
cd "$ws"
run() {
  printf '\n$ argon'
  for a in "$@"; do
    if [[ $a =~ [^A-Za-z0-9_./@=-] ]]; then printf " '%s'" "$a"; else printf ' %s' "$a"; fi
  done
  printf '\n'
  "$argon" "$@"
}

run init shop
run insert users '{"_id": 1, "name": "Ada", "age": 36}' -m "first user"
printf '{"_id": 2, "name": "Bob", "age": 41}\n{"_id": 3, "name": "Cy", "age": 17}\n' > users.ndjson
run insert users --file users.ndjson -m "import two users"
run branch create feature-x
run checkout feature-x
run insert users '{"_id": 4, "name": "Di", "age": 29}' -m "Di only on feature-x"
run update users '{"_id": 1}' '{"$set": {"email": "ada@example.com"}, "$inc": {"age": 1}}'
run delete users '{"age": {"$lt": 18}}' --many
run find users '{"age": {"$gte": 18}}' --sort '{"age": -1}'
run find users --at 4 --sort '{"_id": 1}'
run find users --branch main
run branch
run log --oneline
run log --branch main --json
run status
run diff main feature-x --stat
run checkout main
run merge feature-x
run revert HEAD
run find users --sort '{"_id": 1}'
run reset main~1
run reflog main
run fsck
