//! The Unix socket of a PostgreSQL on this machine, used instead of TCP when the
//! configured URL points at it over loopback.
//!
//! Why: sqlx 0.9 no longer sets `TCP_NODELAY` on its sockets (upstream sqlx #4335, fixed
//! after 0.9.0 but unreleased), and over TLS (`sslmode=prefer`, the default, and Debian's
//! PostgreSQL has `ssl = on`) a statement larger than one TLS record leaves the socket in
//! several writes: Nagle's algorithm holds the tail until the server's delayed ACK, 40 ms
//! later. A 20 KiB contact paid that on every write. A Unix socket has neither Nagle nor
//! TLS, so no statement stalls, and each round trip costs less CPU on both sides.
//!
//! The switch is made only when it provably reaches the same server: the URL's host is a
//! loopback name, a socket for the URL's own port exists in a usual directory here, the
//! server behind TCP says it listens on that same port (so a pooler on another loopback
//! port is never bypassed), and the server behind the socket started at the same instant
//! as the one behind TCP. Anything else, or any
//! failure on the way, keeps the URL as given. `DATABASE_URL` with `?host=/dir` names a
//! socket explicitly and is used as is.

use std::path::{Path, PathBuf};

use sea_orm::sqlx::postgres::{PgConnectOptions, PgConnection};
use sea_orm::sqlx::{Connection as _, Row as _};

/// Where PostgreSQL servers put their sockets: `PGHOST` when it names a directory (libpq's
/// convention), then the Debian and upstream defaults. The server's own
/// `unix_socket_directories` is readable only by privileged roles, so it is not asked.
const SOCKET_DIRECTORIES: [&str; 3] = ["/var/run/postgresql", "/run/postgresql", "/tmp"];

/// The socket directory to use for `target`, if `target` reaches this machine's server
/// over loopback TCP and the same server listens on a local socket that accepts us.
pub(crate) async fn same_server_socket(target: &PgConnectOptions) -> Option<PathBuf> {
    if target.get_socket().is_some() || !is_loopback(target.get_host()) {
        return None;
    }
    let candidates: Vec<PathBuf> = candidate_directories(std::env::var("PGHOST").ok().as_deref())
        .into_iter()
        .filter(|dir| dir.join(format!(".s.PGSQL.{}", target.get_port())).exists())
        .collect();
    if candidates.is_empty() {
        return None;
    }
    let over_tcp = facts(target).await?;
    if over_tcp.port != target.get_port() {
        return None;
    }
    for dir in candidates {
        let over_socket = target.clone().socket(&dir);
        if let Some(found) = facts(&over_socket).await
            && found.started == over_tcp.started
            && found.port == over_tcp.port
        {
            return Some(dir);
        }
    }
    None
}

/// What identifies a running server: when its postmaster started, and its port.
struct ServerFacts {
    started: String,
    port: u16,
}

async fn facts(options: &PgConnectOptions) -> Option<ServerFacts> {
    let mut connection = PgConnection::connect_with(options).await.ok()?;
    let row =
        sea_orm::sqlx::query("SELECT pg_postmaster_start_time()::text, current_setting('port')")
            .fetch_one(&mut connection)
            .await
            .ok()?;
    let facts = ServerFacts {
        started: row.try_get(0).ok()?,
        port: row.try_get::<String, _>(1).ok()?.parse().ok()?,
    };
    let _ = connection.close().await;
    Some(facts)
}

fn is_loopback(host: &str) -> bool {
    matches!(host, "localhost" | "[::1]")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn candidate_directories(pghost: Option<&str>) -> Vec<PathBuf> {
    pghost
        .filter(|host| host.starts_with('/'))
        .into_iter()
        .chain(SOCKET_DIRECTORIES)
        .map(|dir| Path::new(dir).to_path_buf())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_and_addresses_are_local_and_others_are_not() {
        for host in ["localhost", "127.0.0.1", "127.0.0.2", "::1", "[::1]"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "db.example.com",
            "10.0.0.5",
            "192.168.1.1",
            "/var/run/postgresql",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn a_pghost_directory_is_tried_first_and_a_pghost_name_is_not_a_directory() {
        let dirs = candidate_directories(Some("/srv/pg"));
        assert_eq!(dirs.first(), Some(&PathBuf::from("/srv/pg")));
        assert_eq!(dirs.len(), 1 + SOCKET_DIRECTORIES.len());
        assert_eq!(
            candidate_directories(Some("db.example.com")).len(),
            SOCKET_DIRECTORIES.len()
        );
    }
}
