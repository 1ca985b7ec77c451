#!/usr/bin/env bash
# The nightly run: the whole test suite at its nightly size
# (ARGON_TEST_SIZE=nightly, see internal/testsize): more random histories,
# model operations, crash rounds and concurrency time, and every point of
# the checks that the README's suite samples. Extra arguments go to go
# test (for example -run TestModel ./internal/commit instead of ./...).
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --prefix testdata/node --no-audit --no-fund
args=("$@")
if [ ${#args[@]} -eq 0 ]; then
  args=(./...)
fi
ARGON_TEST_SIZE=nightly go test -count=1 -timeout 4h "${args[@]}"
