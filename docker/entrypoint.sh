#!/bin/sh
# Picks the process this container runs: api | worker | migrate | init-secrets.
# `exec` makes node PID 1's direct replacement, so SIGTERM from `docker stop`
# reaches the app itself, which drains in-flight work before exiting.
set -eu

cd "$(dirname "$0")/.."

role="${1:-api}"
if [ "$#" -gt 0 ]; then shift; fi

# docker/healthcheck.mjs reads this to know what to probe.
export HOOKLINE_ROLE="$role"

# Secrets generated once by `init-secrets` into a shared volume stand in for
# PLATFORM_TOKEN / ENCRYPTION_KEY when the operator did not set them, so a bare
# `docker compose up` works without any secret written in the compose file.
secrets_dir="${HOOKLINE_SECRETS_DIR:-/secrets}"
if [ -z "${PLATFORM_TOKEN:-}" ] && [ -r "$secrets_dir/platform_token" ]; then
  PLATFORM_TOKEN="$(cat "$secrets_dir/platform_token")"
  export PLATFORM_TOKEN
fi
if [ -z "${ENCRYPTION_KEY:-}" ] && [ -r "$secrets_dir/encryption_key" ]; then
  ENCRYPTION_KEY="$(cat "$secrets_dir/encryption_key")"
  export ENCRYPTION_KEY
fi

case "$role" in
  api)
    exec node apps/api/dist/main.js "$@"
    ;;
  worker)
    exec node apps/worker/dist/main.js "$@"
    ;;
  migrate)
    exec node packages/db/dist/migrate-cli.js "$@"
    ;;
  init-secrets)
    # Creates what is missing, never replaces: the encryption key must outlive every restart.
    umask 077
    mkdir -p "$secrets_dir"
    [ -s "$secrets_dir/platform_token" ] || node -e 'process.stdout.write(require("crypto").randomBytes(24).toString("hex"))' > "$secrets_dir/platform_token"
    [ -s "$secrets_dir/encryption_key" ] || node -e 'process.stdout.write(require("crypto").randomBytes(32).toString("base64"))' > "$secrets_dir/encryption_key"
    echo "hookline: secrets are in the volume mounted at $secrets_dir; read the platform token with: docker compose exec api cat $secrets_dir/platform_token"
    ;;
  *)
    echo "hookline: unknown command \"$role\"; use one of: api, worker, migrate, init-secrets" >&2
    exit 64
    ;;
esac
