#!/usr/bin/env bash
# make bench: the API against PostgreSQL's own ceiling, on this machine, in one run.
#
# Builds release, creates a throw-away database on the PostgreSQL that make test uses,
# loads a dataset in SQL (scripts/bench/load.sql), starts `crm serve` at RUST_LOG=warn with
# the rate limits lifted and the webhook worker off, warms up, then for each scenario, in
# turn: wrk closed loop (c=BENCH_CLIENTS, scripts/bench/wrk.lua rotates keys and ids), the
# same SQL through pgbench -M prepared -j 1 and -j 2 as crm_app (scripts/bench/pgbench/),
# and crates/loadgen open loop at 50% and 80% of wrk's rate. Then the batch-of-100 against
# 5 single POSTs ratio. CPU, RSS and start-up time are read from /proc. Writes
# target/bench/results.json, prints a markdown table, drops the database. See
# docs/benchmarks.md.
#
# Environment: SCALE (1: 50 tenants x 1,000 contacts, 200 companies, 500 leads, 2,000
# activities; 10: ten times that per tenant), BENCH_DURATION (seconds per run, default 10:
# about 7 minutes in all), BENCH_CLIENTS (32), BENCH_WARMUP (5 s), BENCH_SCENARIOS (all:
# "get list list_q post patch leads mix"), BENCH_ROUNDS (30, the batch ratio),
# BENCH_STATEMENT_COST (0; 1 also measures what PostgreSQL spends per statement of
# scripts/bench/statement-cost/, a minute more), BENCH_OPEN_CONNECTIONS (64),
# BENCH_POOL_SIZE (the server's DB_POOL_SIZE; default BENCH_CLIENTS, the connections
# pgbench uses), BENCH_PAIRS (3: API and pgbench -j 1 runs taken in turn
# per scenario; the ratio reported is the median of the pairs'), BENCH_CRITERION (0; 1 also runs cargo bench at the end),
# BENCH_PROFILE (none; e.g. "get post": after those scenarios' runs, `perf record` of the
# whole machine during one more API run and one more pgbench -j 1 run of BENCH_PROFILE_SECONDS
# (5), folded into flame graphs and summaries under target/bench/profile/).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SCALE="${SCALE:-1}"
DURATION="${BENCH_DURATION:-10}"
CLIENTS="${BENCH_CLIENTS:-32}"
WARMUP="${BENCH_WARMUP:-5}"
SCENARIOS="${BENCH_SCENARIOS:-get list list_q post patch leads mix}"
ROUNDS="${BENCH_ROUNDS:-30}"
PAIRS="${BENCH_PAIRS:-3}"
OPEN_CONNECTIONS="${BENCH_OPEN_CONNECTIONS:-64}"
TENANTS="${BENCH_TENANTS:-50}"
KEYS_PER_TENANT=4
CONTACTS=$((1000 * SCALE)) COMPANIES=$((200 * SCALE)) LEADS=$((500 * SCALE)) ACTIVITIES=$((2000 * SCALE))
OUT="${CARGO_TARGET_DIR:-target}/bench"
export BENCH_OUT="$OUT"
HARNESS=scripts/bench/harness.py

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
    else die "need root to run: $*"; fi
}
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install $* by hand"
    log "installing $* with apt-get"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

command -v wrk >/dev/null 2>&1 || apt_install wrk
command -v curl >/dev/null 2>&1 || apt_install curl
PROFILE="${BENCH_PROFILE:-}"
PROFILE_SECONDS="${BENCH_PROFILE_SECONDS:-5}"
if [[ -n "$PROFILE" ]]; then command -v perf >/dev/null 2>&1 || apt_install linux-perf; fi
cargo build --release -p server -p loadgen >&2
BIN=target/release/crm
LOADGEN=target/release/loadgen
ADMIN_URL="$(scripts/ensure-postgres.sh)"
PGBIN="$(scripts/ensure-postgres.sh --bin-dir)"
PGBENCH="$PGBIN/pgbench"
[[ -x "$PGBENCH" ]] || PGBENCH="$(command -v pgbench || true)"
if [[ -z "$PGBENCH" ]]; then apt_install postgresql-client; PGBENCH="$(command -v pgbench)"; fi
DB="crm_bench_$(python3 -c 'import secrets; print(secrets.token_hex(6))')"
MIGRATION_URL="$(scripts/ensure-postgres.sh --rewrite "$ADMIN_URL" "$DB")"
APP_URL="$(scripts/ensure-postgres.sh --rewrite "$ADMIN_URL" "$DB" crm_app)"
# pgbench connects the way the server does: `crm serve` reaches a PostgreSQL on this
# machine through its Unix socket when the URL names it over loopback (no TLS, no Nagle:
# adapters-postgres/src/local_socket.rs), so pgbench is given that socket too; comparing
# a socket against TLS over TCP would flatter the API.
PGBENCH_URL="$APP_URL"
pg_port="$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(p.port or 5432)' "$APP_URL")"
pg_host="$(python3 -c 'import sys, urllib.parse as u; print(u.urlsplit(sys.argv[1]).hostname or "")' "$APP_URL")"
if [[ "$pg_host" == 127.0.0.1 || "$pg_host" == localhost ]]; then
    for dir in "${PGHOST:-}" /var/run/postgresql /run/postgresql /tmp; do
        if [[ "$dir" == /* && -S "$dir/.s.PGSQL.$pg_port" ]]; then
            PGBENCH_URL="postgresql:///$DB?host=$dir&port=$pg_port&user=crm_app"
            break
        fi
    done
fi
SERVER_PID=""

cleanup() {
    if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true; fi
    "$PGBIN/psql" -X -w -q -d "$ADMIN_URL" -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

psql_owner() { "$PGBIN/psql" -X -w -q -v ON_ERROR_STOP=1 -d "$MIGRATION_URL" "$@"; }

rm -rf "$OUT/runs" "$OUT/fixtures" "$OUT/results.json" "$OUT/profile"
mkdir -p "$OUT/runs" "$OUT/fixtures"
"$PGBIN/psql" -X -w -q -d "$ADMIN_URL" -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$DB\""
MIGRATION_DATABASE_URL="$MIGRATION_URL" "$BIN" migrate 2>/dev/null
log "loading $TENANTS tenants x ($CONTACTS contacts, $COMPANIES companies, $LEADS leads, $ACTIVITIES activities), $KEYS_PER_TENANT API keys each"
load_started=$(date +%s.%N)
psql_owner -v tenants="$TENANTS" -v contacts="$CONTACTS" -v companies="$COMPANIES" \
    -v leads="$LEADS" -v activities="$ACTIVITIES" -v keys="$KEYS_PER_TENANT" \
    -v hook_url="http://127.0.0.1:9/bench-webhook" -f scripts/bench/load.sql
psql_owner -c "ANALYZE"
log "loaded and analyzed in $(python3 -c "print(f'{$(date +%s.%N) - $load_started:.1f}')") s"

# What the load generators pick from (tenant-major; the formulas of load.sql).
psql_owner -At -c "SELECT 'crm_sk_' || substr(md5('k' || t || ':' || k) || md5('K' || t || ':' || k), 1, 40)
                     FROM generate_series(1, $TENANTS) t, generate_series(1, $KEYS_PER_TENANT) k ORDER BY t, k" \
    > "$OUT/fixtures/keys.txt"
psql_owner -At -c "SELECT md5('c' || t || ':' || n)::uuid
                     FROM generate_series(1, $TENANTS) t, generate_series(1, $CONTACTS) n ORDER BY t, n" \
    > "$OUT/fixtures/contacts.txt"
psql_owner -At -c "SELECT md5('s' || t || ':' || s)::uuid
                     FROM generate_series(1, $TENANTS) t, generate_series(1, 6) s ORDER BY t, s" \
    > "$OUT/fixtures/stages.txt"

# The postmaster, for PostgreSQL's CPU time: the parent of one of our backends. Only when
# the server runs on this host (a remote DATABASE_URL leaves PostgreSQL's CPU unmeasured).
POSTMASTER=0
backend_parent="$(psql_owner -At <<'SQL'
SELECT pg_backend_pid() AS pid \gset
\setenv BENCH_BACKEND_PID :pid
\! ps -o ppid= -p "$BENCH_BACKEND_PID" 2>/dev/null || true
SQL
)"
backend_parent="${backend_parent//[[:space:]]/}"
if [[ "$backend_parent" =~ ^[0-9]+$ ]] && [[ "$(ps -o comm= -p "$backend_parent" 2>/dev/null)" == postgres* ]]; then
    POSTMASTER="$backend_parent"
else
    log "PostgreSQL is not a local process: its CPU time is not measured"
fi

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
ADDR="127.0.0.1:$PORT"
# The benchmark measures the API, not its rate limits: lifted. The webhook worker is off
# (deliveries are written, as the outbox requires, but not sent): it is not what we measure.
# The server may hold as many database connections as pgbench has (one per client; half
# of them the statement lane's): with the default 16, a GET or a list waited for one of 8
# lane connections and the API served 5-25% fewer requests (docs/benchmarks.md).
started_ns=$(date +%s%N)
DATABASE_URL="$APP_URL" BIND_ADDR="$ADDR" RUST_LOG=warn WEBHOOK_DELIVER_IN_SERVE=false \
    DB_POOL_SIZE="${BENCH_POOL_SIZE:-$CLIENTS}" \
    RATE_LIMIT_PUBLIC=1000000/1 RATE_LIMIT_AUTH=1000000/1 RATE_LIMIT_QR=1000000/1 \
    RATE_LIMIT_AUTHENTICATED=1000000/1 RATE_LIMIT_TENANT=1000000/1 \
    "$BIN" serve >"$OUT/server.log" 2>&1 &
SERVER_PID=$!
STARTUP_MS=""
for _ in $(seq 1 1000); do
    if curl -fs -o /dev/null "http://$ADDR/healthz" 2>/dev/null; then
        STARTUP_MS=$(( ($(date +%s%N) - started_ns) / 1000000 ))
        break
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || die "crm serve exited: $(tail -5 "$OUT/server.log")"
    sleep 0.01
done
[[ -n "$STARTUP_MS" ]] || die "crm serve did not answer /healthz within 10 s"
log "crm serve answered /healthz after $STARTUP_MS ms (pid $SERVER_PID)"
first_key="$(head -1 "$OUT/fixtures/keys.txt")"
first_contact="$(head -1 "$OUT/fixtures/contacts.txt")"
curl -fs -o /dev/null -H "Authorization: Bearer $first_key" "http://$ADDR/v1/contacts/$first_contact" \
    || die "a loaded key cannot read a loaded contact"

MACHINE="$(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM, $(uname -sr)"
PG_VERSION="$(psql_owner -At -c "SHOW server_version")"
log "machine: $MACHINE; PostgreSQL $PG_VERSION"

wrk_run() { # label scenario duration
    BENCH_SCENARIO="$2" BENCH_FIXTURES="$OUT/fixtures" python3 "$HARNESS" run "$1" wrk "$SERVER_PID" "$POSTMASTER" -- \
        wrk -t2 -c"$CLIENTS" -d"${3}s" --latency -s scripts/bench/wrk.lua "http://$ADDR"
}
pgbench_run() { # label scenario jobs
    local scripts=()
    if [[ "$2" == mix ]]; then
        scripts=(-f scripts/bench/pgbench/get.sql@40 -f scripts/bench/pgbench/list.sql@20
            -f scripts/bench/pgbench/list_q.sql@10 -f scripts/bench/pgbench/leads.sql@10
            -f scripts/bench/pgbench/post.sql@10 -f scripts/bench/pgbench/patch.sql@10)
    else
        scripts=(-f "scripts/bench/pgbench/$2.sql")
    fi
    python3 "$HARNESS" run "$1" pgbench "$SERVER_PID" "$POSTMASTER" -- \
        "$PGBENCH" -n -M prepared -j "$3" -c "$CLIENTS" -T "$DURATION" \
        -D tenants="$TENANTS" -D contacts="$CONTACTS" "${scripts[@]}" "$PGBENCH_URL"
}
open_run() { # label scenario rate
    python3 "$HARNESS" run "$1" loadgen "$SERVER_PID" "$POSTMASTER" -- \
        "$LOADGEN" --addr "$ADDR" --fixtures "$OUT/fixtures" --scenario "$2" --rate "$3" \
        --duration "$DURATION" --connections "$OPEN_CONNECTIONS"
}
profile_run() { # scenario: perf of the whole machine under the API, then under pgbench -j 1
    local dir="$OUT/profile" what
    mkdir -p "$dir"
    for what in api pgbench; do
        log "$1: profiling the $what run for $PROFILE_SECONDS s (perf record -a, DWARF call graphs)"
        perf record -q -a -F 499 --call-graph dwarf,16384 -o "$dir/$1-$what.data" \
            -- sleep "$PROFILE_SECONDS" 2>"$dir/$1-$what.perf.log" &
        local perf_pid=$!
        if [[ "$what" == api ]]; then
            BENCH_SCENARIO="$1" BENCH_FIXTURES="$OUT/fixtures" wrk -t2 -c"$CLIENTS" \
                -d"${PROFILE_SECONDS}s" -s scripts/bench/wrk.lua "http://$ADDR" >"$dir/$1-$what.out" 2>&1
        else
            DURATION="$PROFILE_SECONDS" pgbench_run "$1-profile-pgbench" "$1" 1 >/dev/null
        fi
        wait "$perf_pid" || log "perf record failed: $(tail -2 "$dir/$1-$what.perf.log")"
        perf script -i "$dir/$1-$what.data" 2>/dev/null \
            | python3 scripts/bench/flame.py "$dir/$1-$what" "$1, $what run: $MACHINE" >/dev/null \
            || log "no profile for $1 ($what)"
        rm -f "$dir/$1-$what.data"
    done
}
wrk_rps() { python3 -c 'import json, re, sys; print(re.search(r"Requests/sec:\s+([\d.]+)", json.load(open(sys.argv[1]))["stdout"]).group(1))' "$OUT/runs/$1.json"; }

log "warm-up: mix for $WARMUP s"
wrk_run warmup mix "$WARMUP"
for scenario in $SCENARIOS; do
    # The host's speed drifts by tens of per cent within a minute (a shared machine): the
    # API and pgbench -j 1 take turns, PAIRS times, and each pair gives one ratio.
    rates=()
    for pair in $(seq 1 "$PAIRS"); do
        log "$scenario: API closed loop, c=$CLIENTS, $DURATION s, then pgbench -j 1 (pair $pair of $PAIRS)"
        wrk_run "$scenario-api-$pair" "$scenario" "$DURATION"
        pgbench_run "$scenario-pgbench-j1-$pair" "$scenario" 1
        rates+=("$(wrk_rps "$scenario-api-$pair")")
    done
    log "$scenario: pgbench -j 2"
    pgbench_run "$scenario-pgbench-j2" "$scenario" 2
    max="$(python3 -c 'import statistics, sys; print(statistics.median(map(float, sys.argv[1:])))' "${rates[@]}")"
    for share in 50 80; do
        rate="$(python3 -c "print(max(1.0, $max * $share / 100))")"
        log "$scenario: open loop at $share% ($rate/s)"
        open_run "$scenario-open-$share" "$scenario" "$rate"
    done
    if [[ " $PROFILE " == *" $scenario "* ]]; then profile_run "$scenario"; fi
done
if [[ "${BENCH_STATEMENT_COST:-0}" == 1 ]]; then
    # What PostgreSQL spends on one statement, apart from any HTTP: a bare round trip, the
    # read without its key check, the API's GET statement alone and pipelined
    # (docs/benchmarks.md, "where PostgreSQL's time goes").
    # The pipelined scripts are made from read-known-key.sql: its statement `depth` times,
    # each with ids of its own, in one pipeline (one Sync at its end: pgbench 15 has no
    # \syncpipeline; a lane would end each statement with one).
    for depth in 4 8; do
        python3 - "$depth" scripts/bench/statement-cost/read-known-key.sql \
            >"$OUT/fixtures/read-known-key-pipelined-$depth.sql" <<'PY'
import re, sys
depth, lines = int(sys.argv[1]), open(sys.argv[2]).read().splitlines()
meta = [line for line in lines if line.startswith("\\set ")]
sql = [line for line in lines if line.strip() and not line.startswith(("--", "\\"))]
out = []
for i in range(depth):
    out += [re.sub(r"^\\set (\w+)", rf"\\set \g<1>{i}", line) for line in meta]
out.append("\\startpipeline")
for i in range(depth):
    out += [re.sub(r":([tnk])::", rf":\g<1>{i}::", line) for line in sql]
out.append("\\endpipeline")
print("\n".join(out))
PY
    done
    order=0
    for variant in trivial:1 read-no-key:1 read-known-key:1 read-known-key-pipelined-4:4 \
        read-known-key-pipelined-8:8; do
        name="${variant%%:*}" per="${variant##*:}"
        clients=$(( CLIENTS / per > 0 ? CLIENTS / per : 1 ))
        script="scripts/bench/statement-cost/$name.sql"
        [[ -f "$script" ]] || script="$OUT/fixtures/$name.sql"
        order=$((order + 1))
        log "statement cost: $name, $per per exchange, $clients clients, $DURATION s"
        python3 "$HARNESS" run "cost-$order-$name-x$per-c$clients" pgbench "$SERVER_PID" "$POSTMASTER" -- \
            "$PGBENCH" -n -M prepared -j 1 -c "$clients" -T "$DURATION" \
            -D tenants="$TENANTS" -D contacts="$CONTACTS" -f "$script" "$PGBENCH_URL"
    done
fi
log "batch of 100 against 5 single POSTs, $ROUNDS rounds"
python3 "$HARNESS" run batch batch "$SERVER_PID" "$POSTMASTER" -- \
    python3 "$HARNESS" batch "$PORT" "$first_key" "$ROUNDS"

titles='{"get": "GET one contact", "list": "GET list, 25", "list_q": "GET list, 25, with q",
         "post": "POST contact (+ event, delivery)", "patch": "PATCH contact",
         "leads": "GET leads by stage, 25", "mix": "mix 80% reads / 20% writes"}'
python3 - "$OUT/meta.json" <<PY
import json, sys
json.dump({
    "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
    "machine": """$MACHINE""",
    "postgres": "$PG_VERSION",
    "dataset": "$TENANTS tenants x $CONTACTS contacts, $COMPANIES companies, $LEADS leads, $ACTIVITIES activities, $KEYS_PER_TENANT keys",
    "scale": $SCALE,
    "clients": $CLIENTS,
    "duration_s": $DURATION,
    "startup_ms": $STARTUP_MS,
    "postgres_cpu_measured": $([[ "$POSTMASTER" != 0 ]] && echo True || echo False),
    "scenarios": "$SCENARIOS".split(),
    "titles": json.loads('''$titles'''),
}, open(sys.argv[1], "w"), indent=2)
PY
python3 "$HARNESS" report "$OUT"
log "results: $OUT/results.json"
if [[ "${BENCH_CRITERION:-0}" == 1 ]]; then
    cargo bench -p domain -p api-actix >&2
fi
