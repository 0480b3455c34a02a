#!/usr/bin/env bash
# Makes sure a Redis answers at 127.0.0.1:6379: installs Debian's redis-server if it is missing
# and starts it in the background if it is not running. Used by `make run`, `make test` and CI.
set -euo pipefail

if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    exit 0
fi
if ! command -v redis-server >/dev/null 2>&1; then
    echo "installing redis-server (Debian package)" >&2
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi
echo "starting redis-server on 127.0.0.1:6379" >&2
mkdir -p "${REDIS_DIR:-/tmp/larder-redis}"
redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir "${REDIS_DIR:-/tmp/larder-redis}" --logfile "${REDIS_DIR:-/tmp/larder-redis}/redis.log"
for _ in $(seq 1 50); do
    redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && exit 0
    sleep 0.1
done
echo "redis-server did not start; see ${REDIS_DIR:-/tmp/larder-redis}/redis.log" >&2
exit 1
