//! `crm`: the CRM API server and its operator commands.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use server::config::{ServeConfig, migration_url};

/// mimalloc instead of glibc's malloc: allocation and freeing were 15% of the server's CPU
/// per POST and 13% per GET under load (`make bench` profiles; docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "crm", version, about = "Multi-tenant CRM API")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (applies pending migrations first when MIGRATION_DATABASE_URL is set).
    Serve,
    /// Deliver webhooks only (no HTTP API); run as many as you like beside `crm serve`.
    Worker,
    /// Apply pending migrations to MIGRATION_DATABASE_URL.
    Migrate,
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Create a tenant with an owner and an owner API key; prints {"tenantId", "apiKey"}.
    Create {
        /// The tenant's display name.
        #[arg(long)]
        name: String,
        /// The owner's e-mail address (a placeholder is used when omitted).
        #[arg(long)]
        owner_email: Option<String>,
    },
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let pretty = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("pretty"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if pretty {
        builder.init();
    } else {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init();
    }
}

fn fail(message: &dyn std::fmt::Display) -> ExitCode {
    tracing::error!("{message}");
    eprintln!("crm: {message}");
    ExitCode::FAILURE
}

async fn serve() -> ExitCode {
    let config = match ServeConfig::from_env() {
        Ok(config) => config,
        Err(error) => return fail(&error),
    };
    // Before anything starts, so a signal cannot arrive unheard.
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(error) => return fail(&error),
        };
    let running = match server::start(&config).await {
        Ok(running) => running,
        Err(error) => return fail(&error),
    };
    tracing::info!(address = %running.address, "serving");
    let sweeper = actix_web::rt::spawn(server::sweep_forever(
        running.store.clone(),
        config.sweep_interval,
    ));
    let (stop_delivering, stop) = tokio::sync::watch::channel(false);
    // The in-process worker connects as the worker role (its own pool, checked by
    // `server::start`), never through the API's crm_app pool.
    let deliverer = running.worker_store.clone().map(|worker_store| {
        actix_web::rt::spawn(server::deliver_until(
            worker_store,
            config.webhooks.clone(),
            stop,
        ))
    });
    let handle = running.server.handle();
    let mut server = actix_web::rt::spawn(running.server);
    // Graceful drain on SIGINT/SIGTERM: the listener closes at once (new connections are
    // refused), requests in flight get SHUTDOWN_TIMEOUT_SECS to finish, and the delivery
    // pass under way finishes and records its outcomes (each send is bounded by the
    // webhook timeout) while no new pass starts. Both drain at the same time.
    let result = tokio::select! {
        result = &mut server => result,
        () = async {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => tracing::info!("stopping on SIGINT: draining"),
                _ = terminate.recv() => tracing::info!("stopping on SIGTERM: draining"),
            }
        } => {
            let _ = stop_delivering.send(true);
            handle.stop(true).await;
            server.await
        }
    };
    let result = match result {
        Ok(result) => result,
        Err(error) => Err(std::io::Error::other(error)),
    };
    sweeper.abort();
    let _ = stop_delivering.send(true);
    if let Some(deliverer) = deliverer
        && deliverer.await.is_err()
    {
        tracing::warn!("webhook delivery ended abnormally");
    }
    // Every connection is back by now (the workers have stopped); the bound only guards
    // against a pool that would wait on one forever.
    let pools = async {
        running.store.close().await;
        if let Some(worker_store) = running.worker_store {
            worker_store.close().await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(5), pools)
        .await
        .is_err()
    {
        tracing::warn!("closing the database pools took over 5 s; exiting anyway");
    }
    match result {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(error) => fail(&error),
    }
}

async fn worker() -> ExitCode {
    let (url, webhooks) = match server::config::worker_config() {
        Ok(config) => config,
        Err(error) => return fail(&error),
    };
    // As the worker role, checked like the API's: no RLS escape, and able to claim.
    let store = match server::connect_worker(&url, &webhooks).await {
        Ok(store) => store,
        Err(error) => return fail(&error),
    };
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(error) => return fail(&error),
        };
    tracing::info!("delivering webhooks");
    // On SIGINT or SIGTERM the pass under way finishes and records its outcomes, then the
    // worker stops. (Killed outright, its deliveries keep their leases until they expire,
    // then any worker sends them again: at least once.)
    let (stop_delivering, stop) = tokio::sync::watch::channel(false);
    actix_web::rt::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("stopping on SIGINT"),
            _ = terminate.recv() => tracing::info!("stopping on SIGTERM"),
        }
        let _ = stop_delivering.send(true);
    });
    server::deliver_until(store.clone(), webhooks, stop).await;
    store.close().await;
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    actix_web::rt::System::new().block_on(async move {
        match cli.command {
            Command::Serve => serve().await,
            Command::Worker => worker().await,
            Command::Migrate => {
                let url = match migration_url() {
                    Ok(url) => url,
                    Err(error) => return fail(&error),
                };
                match adapters_postgres::migrate(&url).await {
                    Ok(applied) => {
                        tracing::info!(applied = ?applied, "migrations up to date");
                        ExitCode::SUCCESS
                    }
                    Err(error) => fail(&error),
                }
            }
            Command::Tenant {
                command: TenantCommand::Create { name, owner_email },
            } => {
                let url = match migration_url() {
                    Ok(url) => url,
                    Err(error) => return fail(&error),
                };
                match server::create_tenant(&url, &name, owner_email.as_deref()).await {
                    Ok(output) => {
                        println!("{output}");
                        ExitCode::SUCCESS
                    }
                    Err(error) => fail(&error),
                }
            }
        }
    })
}
