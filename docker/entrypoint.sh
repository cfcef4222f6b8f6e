#!/bin/sh
# Picks the process this container runs: api | worker | migrate.
# `exec` makes node PID 1's direct replacement, so SIGTERM from `docker stop`
# reaches the app itself, which drains in-flight work before exiting.
set -eu

cd "$(dirname "$0")/.."

role="${1:-api}"
if [ "$#" -gt 0 ]; then shift; fi

# docker/healthcheck.mjs reads this to know what to probe.
export HOOKLINE_ROLE="$role"

case "$role" in
  api)
    exec node --import tsx apps/api/src/main.ts "$@"
    ;;
  worker)
    exec node --import tsx apps/worker/src/main.ts "$@"
    ;;
  migrate)
    exec node --import tsx packages/db/src/migrate-cli.ts "$@"
    ;;
  *)
    echo "hookline: unknown command \"$role\"; use one of: api, worker, migrate" >&2
    exit 64
    ;;
esac
