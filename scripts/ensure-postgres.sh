#!/usr/bin/env bash
# Find or start a PostgreSQL server for development and tests.
#
# Usage:
#   scripts/ensure-postgres.sh
#       Print ONE line on stdout: a superuser URL to the `postgres` maintenance
#       database. Progress goes to stderr. In order:
#         1. $DATABASE_URL, if set, printed unchanged (treated as the admin URL);
#         2. a server answering on 127.0.0.1:5432 (skipped with PG_FORCE_PRIVATE=1):
#            postgres://postgres@127.0.0.1:5432/postgres;
#         3. a private cluster under target/pgdata on 127.0.0.1:55432, initialised
#            from the machine's PostgreSQL binaries (Debian's `postgresql` package
#            is installed if they are missing) and started if not running.
#   scripts/ensure-postgres.sh --db-url DB [ROLE]
#       Same as above, then print the URL of database DB on the same server, as
#       ROLE (default: the admin URL's user and password).
#   scripts/ensure-postgres.sh --rewrite URL DB [ROLE]
#       Print URL with its database replaced by DB (and its user by ROLE, if
#       given, dropping any password). Touches no server.
#   scripts/ensure-postgres.sh --bin-dir
#       Print a directory holding the PostgreSQL client tools (psql, pg_dump,
#       createdb), installing them if missing.
#   scripts/ensure-postgres.sh --stop
#       Stop the private cluster if it is running (its data stays).
#
# Environment: DATABASE_URL, PG_FORCE_PRIVATE=1, PG_PRIVATE_PORT (default 55432),
# PG_PRIVATE_DIR (default <repo>/target/pgdata).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
PRIVATE_PORT="${PG_PRIVATE_PORT:-55432}"
PRIVATE_DIR="${PG_PRIVATE_DIR:-$TARGET_DIR/pgdata}"
PG_OS_USER=postgres

log() { printf 'ensure-postgres: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# Replace the database (and optionally the user) of a postgres:// URL.
rewrite_url() {
    local url="$1" db="$2" role="${3:-}"
    local re='^(postgres(ql)?://)(([^@/?#]*)@)?([^/?#]*)(/[^?#]*)?(\?[^#]*)?$'
    [[ "$url" =~ $re ]] || die "cannot parse database URL (expected postgres://user@host:port/db)"
    local scheme="${BASH_REMATCH[1]}" userinfo="${BASH_REMATCH[4]}" hostport="${BASH_REMATCH[5]}"
    local query="${BASH_REMATCH[7]}"
    local auth=""
    if [[ -n "$role" ]]; then
        auth="$role@"
    elif [[ -n "${BASH_REMATCH[3]}" ]]; then
        auth="$userinfo@"
    fi
    printf '%s%s%s/%s%s\n' "$scheme" "$auth" "$hostport" "$db" "$query"
}

as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        die "need root to run: $*"
    fi
}

apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install PostgreSQL ($*) by hand"
    log "installing $* with apt-get (this takes a minute)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

# Highest-version /usr/lib/postgresql/*/bin that holds the given program.
versioned_bin_dir() {
    local prog="$1" dir best="" bestv=-1 v
    for dir in /usr/lib/postgresql/*/bin; do
        [[ -x "$dir/$prog" ]] || continue
        v="$(basename "$(dirname "$dir")")"
        v="${v%%.*}"
        [[ "$v" =~ ^[0-9]+$ ]] || continue
        if ((v > bestv)); then
            bestv="$v"
            best="$dir"
        fi
    done
    [[ -n "$best" ]] && printf '%s\n' "$best"
}

client_bin_dir() {
    local dir
    if dir="$(versioned_bin_dir psql)"; then
        printf '%s\n' "$dir"
        return
    fi
    if command -v psql >/dev/null 2>&1 && command -v pg_dump >/dev/null 2>&1; then
        dirname "$(command -v psql)"
        return
    fi
    apt_install postgresql-client
    dir="$(versioned_bin_dir psql)" || die "psql still missing after installing postgresql-client"
    printf '%s\n' "$dir"
}

server_bin_dir() {
    local dir ver
    # An existing cluster must be run by the major version that created it.
    if [[ -f "$PRIVATE_DIR/PG_VERSION" ]]; then
        ver="$(cat "$PRIVATE_DIR/PG_VERSION")"
        if [[ -x "/usr/lib/postgresql/$ver/bin/pg_ctl" ]]; then
            printf '%s\n' "/usr/lib/postgresql/$ver/bin"
            return
        fi
        log "cluster in $PRIVATE_DIR is version $ver, whose binaries are missing; re-initialising it"
        as_root rm -rf "$PRIVATE_DIR"
    fi
    if dir="$(versioned_bin_dir initdb)" && [[ -x "$dir/pg_ctl" ]]; then
        printf '%s\n' "$dir"
        return
    fi
    apt_install postgresql
    dir="$(versioned_bin_dir initdb)" || die "initdb still missing after installing postgresql"
    printf '%s\n' "$dir"
}

tcp_answers() {
    local host="$1" port="$2"
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -q -h "$host" -p "$port" -t 3
    else
        # shellcheck disable=SC2016 # $0 and $1 expand in the child shell
        timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$host" "$port" 2>/dev/null
    fi
}

# Is URL usable as a superuser? (Assumed yes when psql is not installed.)
usable_as_superuser() {
    local url="$1" psql_bin="" out
    if [[ -n "$(versioned_bin_dir psql)" ]]; then
        psql_bin="$(versioned_bin_dir psql)/psql"
    elif command -v psql >/dev/null 2>&1; then
        psql_bin="$(command -v psql)"
    else
        return 0
    fi
    out="$(PGCONNECT_TIMEOUT=5 "$psql_bin" -w -X -qtA -d "$url" \
        -c 'SELECT rolsuper FROM pg_roles WHERE rolname = current_user' 2>/dev/null)" || return 1
    [[ "$out" == "t" ]]
}

# Run a command as the OS user that owns the private cluster. The lock's file
# descriptor is closed so that the postmaster does not inherit (and keep) it.
as_pg_user() {
    if [[ "$(id -u)" -eq 0 ]]; then
        (cd / && runuser -u "$PG_OS_USER" -- "$@" 9>&-)
    else
        (cd / && "$@" 9>&-)
    fi
}

ensure_pg_os_user() {
    [[ "$(id -u)" -eq 0 ]] || return 0
    if ! id "$PG_OS_USER" >/dev/null 2>&1; then
        log "creating system user $PG_OS_USER"
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin "$PG_OS_USER"
    fi
}

private_running() {
    local bin="$1"
    [[ -f "$PRIVATE_DIR/postmaster.pid" ]] || return 1
    as_pg_user "$bin/pg_ctl" -D "$PRIVATE_DIR" status >/dev/null 2>&1
}

ensure_private_cluster() {
    local bin
    mkdir -p "$TARGET_DIR"
    # Serialise concurrent callers (e.g. parallel make jobs).
    exec 9>"$TARGET_DIR/.pgdata.lock"
    flock -w 300 9 || die "timed out waiting for $TARGET_DIR/.pgdata.lock"

    bin="$(server_bin_dir)"
    ensure_pg_os_user

    if [[ -d "$PRIVATE_DIR" && ! -f "$PRIVATE_DIR/PG_VERSION" ]]; then
        log "removing incomplete cluster directory $PRIVATE_DIR"
        rm -rf "$PRIVATE_DIR"
    fi

    if [[ ! -d "$PRIVATE_DIR" ]]; then
        log "initialising private cluster in $PRIVATE_DIR with $bin/initdb"
        mkdir -p "$PRIVATE_DIR"
        if [[ "$(id -u)" -eq 0 ]]; then
            chown "$PG_OS_USER:" "$PRIVATE_DIR"
            as_pg_user test -w "$PRIVATE_DIR" ||
                die "OS user $PG_OS_USER cannot reach $PRIVATE_DIR (a parent directory is not searchable); set PG_PRIVATE_DIR to a path it can reach"
        fi
        chmod 700 "$PRIVATE_DIR"
        local locale=C
        if locale -a 2>/dev/null | grep -qix 'c\.utf-\?8'; then
            locale=C.UTF-8
        fi
        as_pg_user "$bin/initdb" -D "$PRIVATE_DIR" -U postgres --auth=trust -E UTF8 \
            --locale="$locale" >&2 || die "initdb failed"
        local sockdir="$PRIVATE_DIR"
        # A Unix socket path is limited to 107 bytes; go TCP-only if ours would not fit.
        if ((${#sockdir} + 16 > 100)); then
            sockdir=""
        fi
        cat >>"$PRIVATE_DIR/postgresql.conf" <<EOF

# --- added by scripts/ensure-postgres.sh: disposable development/test cluster ---
listen_addresses = '127.0.0.1'
port = $PRIVATE_PORT
unix_socket_directories = '$sockdir'
max_connections = 200
fsync = off
full_page_writes = off
EOF
    fi

    if private_running "$bin"; then
        log "private cluster already running on 127.0.0.1:$PRIVATE_PORT"
    else
        log "starting private cluster on 127.0.0.1:$PRIVATE_PORT (log: $PRIVATE_DIR/server.log)"
        as_pg_user "$bin/pg_ctl" -D "$PRIVATE_DIR" -l "$PRIVATE_DIR/server.log" -w -t 60 start >&2 || {
            tail -n 20 "$PRIVATE_DIR/server.log" >&2 || true
            die "pg_ctl start failed"
        }
    fi

    local i
    for ((i = 0; i < 60; i++)); do
        if "$bin/pg_isready" -q -h 127.0.0.1 -p "$PRIVATE_PORT" -t 2; then
            printf 'postgres://postgres@127.0.0.1:%s/postgres\n' "$PRIVATE_PORT"
            return
        fi
        sleep 0.5
    done
    die "private cluster did not become ready on 127.0.0.1:$PRIVATE_PORT"
}

stop_private_cluster() {
    local bin
    [[ -f "$PRIVATE_DIR/PG_VERSION" ]] || {
        log "no private cluster in $PRIVATE_DIR"
        return 0
    }
    bin="/usr/lib/postgresql/$(cat "$PRIVATE_DIR/PG_VERSION")/bin"
    if private_running "$bin"; then
        log "stopping private cluster in $PRIVATE_DIR"
        as_pg_user "$bin/pg_ctl" -D "$PRIVATE_DIR" -m fast -w stop >&2
    else
        log "private cluster in $PRIVATE_DIR is not running"
    fi
}

admin_url() {
    if [[ -n "${DATABASE_URL:-}" ]]; then
        log "using DATABASE_URL"
        printf '%s\n' "$DATABASE_URL"
        return
    fi
    if [[ "${PG_FORCE_PRIVATE:-0}" != 1 ]] && tcp_answers 127.0.0.1 5432; then
        local url=postgres://postgres@127.0.0.1:5432/postgres
        if usable_as_superuser "$url"; then
            log "using the PostgreSQL server on 127.0.0.1:5432"
            printf '%s\n' "$url"
            return
        fi
        log "a server answers on 127.0.0.1:5432 but not to superuser postgres without a password; using a private cluster"
    fi
    ensure_private_cluster
}

case "${1:-}" in
"")
    admin_url
    ;;
--db-url)
    [[ $# -ge 2 && $# -le 3 ]] || die "usage: $0 --db-url DB [ROLE]"
    admin="$(admin_url)"
    rewrite_url "$admin" "$2" "${3:-}"
    ;;
--rewrite)
    [[ $# -ge 3 && $# -le 4 ]] || die "usage: $0 --rewrite URL DB [ROLE]"
    rewrite_url "$2" "$3" "${4:-}"
    ;;
--bin-dir)
    client_bin_dir
    ;;
--stop)
    stop_private_cluster
    ;;
-h | --help)
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
    ;;
*)
    die "unknown argument: $1 (see --help)"
    ;;
esac
