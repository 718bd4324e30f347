#!/usr/bin/env bash
# Finds or starts the Redis the tests use, and prints its URL; with --server-bin, prints
# the path of `redis-server` instead (a test restarts a private one of its own).
#
#   1. $TEST_REDIS_URL, if set;
#   2. else a Redis answering PING on 127.0.0.1:6379;
#   3. else a private, non-persistent redis-server started on 127.0.0.1:56379 (pid and log
#      under target/redis/), installing Debian's redis-server package if it is missing.
#
# Progress goes to stderr.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PRIVATE_PORT="${REDIS_PRIVATE_PORT:-56379}"

server_bin() {
    if command -v redis-server >/dev/null 2>&1; then
        command -v redis-server
        return
    fi
    echo "ensure-redis: installing Debian's redis-server package" >&2
    if [[ "$(id -u)" -ne 0 ]]; then
        echo "ensure-redis: not root; install redis-server yourself or set TEST_REDIS_URL" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends redis-server >&2
    # Debian's package starts a service on 6379 where it can; the tests do not rely on it.
    command -v redis-server
}

# PING over bash's /dev/tcp: no client needed.
answers() {
    local port="$1" reply=""
    { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || return 1
    printf 'PING\r\n' >&3
    read -r -t 2 reply <&3 || true
    exec 3<&- 3>&-
    [[ "$reply" == +PONG* ]]
}

if [[ "${1:-}" == --server-bin ]]; then
    server_bin
    exit 0
fi

if [[ -n "${TEST_REDIS_URL:-}" ]]; then
    echo "$TEST_REDIS_URL"
    exit 0
fi
if answers 6379; then
    echo "ensure-redis: using the Redis on 127.0.0.1:6379" >&2
    echo "redis://127.0.0.1:6379"
    exit 0
fi
if ! answers "$PRIVATE_PORT"; then
    bin="$(server_bin)"
    mkdir -p target/redis
    echo "ensure-redis: starting a private redis-server on 127.0.0.1:$PRIVATE_PORT" >&2
    "$bin" --port "$PRIVATE_PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize yes --pidfile "$PWD/target/redis/redis.pid" \
        --logfile "$PWD/target/redis/redis.log" >&2
    for _ in $(seq 1 50); do
        answers "$PRIVATE_PORT" && break
        sleep 0.1
    done
    answers "$PRIVATE_PORT" || { echo "ensure-redis: redis-server did not start" >&2; exit 1; }
fi
echo "redis://127.0.0.1:$PRIVATE_PORT"
