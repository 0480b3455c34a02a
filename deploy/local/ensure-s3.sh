#!/usr/bin/env bash
# Makes sure an S3-compatible server answers at 127.0.0.1:${S3_PORT:-9010} for the tests: moto's
# server (PyPI `moto[server]`, installed with pip if missing), in memory, any credentials.
set -euo pipefail
port="${S3_PORT:-9010}"
if curl -s -o /dev/null "http://127.0.0.1:${port}/moto-api/" 2>/dev/null; then
    exit 0
fi
# `python3 -m moto.server` rather than the `moto_server` script: a fresh pip install may not have
# put the script on PATH yet (pyenv shims need a rehash).
if ! python3 -c 'import moto.server' >/dev/null 2>&1; then
    echo "installing moto[server] (PyPI)" >&2
    python3 -m pip install --quiet 'moto[server]'
fi
echo "starting moto's server on 127.0.0.1:${port}" >&2
mkdir -p /tmp/larder-s3
nohup python3 -m moto.server -H 127.0.0.1 -p "${port}" > /tmp/larder-s3/moto.log 2>&1 &
for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:${port}/moto-api/" 2>/dev/null && exit 0
    sleep 0.1
done
echo "moto_server did not start; see /tmp/larder-s3/moto.log" >&2
exit 1
