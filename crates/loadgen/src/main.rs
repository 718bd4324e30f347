//! `loadgen`: the open-loop load generator of `make bench` (a dev tool, not the product).
//!
//! wrk drives the API closed loop (each connection sends when its previous answer is in),
//! which finds the maximum throughput but hides queueing: a stalled server simply gets
//! fewer requests. Here requests are sent at a fixed rate whatever the server does, and
//! each latency is measured from the request's *intended* send time, so time spent
//! waiting for a free connection counts (no coordinated omission).
//!
//! ```text
//! loadgen --addr 127.0.0.1:8080 --fixtures target/bench/fixtures --scenario get \
//!         --rate 1500 --duration 10 [--connections 64]
//! ```
//! Prints one JSON object: sent, completed, errors, achieved rate, p50/p99/p99.9/max (ms).

mod http;
mod scenario;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, mpsc};
use tokio::time::Instant;

use crate::http::Connection;
use crate::scenario::{Fixtures, Rng, Scenario};

/// What the command line asks for.
#[derive(Debug)]
struct Options {
    addr: String,
    fixtures: PathBuf,
    scenario: Scenario,
    rate: f64,
    duration: Duration,
    connections: usize,
}

const USAGE: &str = "usage: loadgen --addr HOST:PORT --fixtures DIR --scenario \
                     get|list|list_q|post|patch|leads|mix --rate PER_SECOND --duration SECONDS \
                     [--connections N]";

fn options() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let (mut addr, mut fixtures, mut scenario, mut rate, mut duration) =
        (None, None, None, None, None);
    let mut connections = 64;
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |v: &str| {
            v.parse::<f64>()
                .map_err(|_| format!("{flag}: not a number"))
        };
        match flag.as_str() {
            "--addr" => addr = Some(value),
            "--fixtures" => fixtures = Some(PathBuf::from(value)),
            "--scenario" => {
                scenario = Some(
                    Scenario::parse(&value).ok_or_else(|| format!("unknown scenario {value}"))?,
                );
            }
            "--rate" => rate = Some(number(&value)?),
            "--duration" => duration = Some(Duration::from_secs_f64(number(&value)?)),
            "--connections" => {
                connections = value
                    .parse()
                    .map_err(|_| "--connections: not a number".to_owned())?;
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    let missing = |what: &str| format!("{what} is required; {USAGE}");
    let rate = rate.ok_or_else(|| missing("--rate"))?;
    if !(rate > 0.0 && connections > 0) {
        return Err(format!(
            "--rate and --connections must be positive; {USAGE}"
        ));
    }
    Ok(Options {
        addr: addr.ok_or_else(|| missing("--addr"))?,
        fixtures: fixtures.ok_or_else(|| missing("--fixtures"))?,
        scenario: scenario.ok_or_else(|| missing("--scenario"))?,
        rate,
        duration: duration.ok_or_else(|| missing("--duration"))?,
        connections,
    })
}

/// What one connection saw.
#[derive(Debug, Default)]
struct Tally {
    /// Microseconds from intended send time to the end of the response.
    latencies: Vec<u64>,
    /// Responses outside 2xx, and broken exchanges.
    errors: u64,
}

/// Sends the jobs it takes from the shared queue, one at a time, on one connection
/// (reconnecting after a broken exchange), until the queue closes.
async fn connection_loop(
    options: Arc<Options>,
    fixtures: Arc<Fixtures>,
    queue: Arc<Mutex<mpsc::UnboundedReceiver<Instant>>>,
    seed: u64,
) -> Tally {
    let mut tally = Tally::default();
    let mut rng = Rng::new(seed);
    let mut connection: Option<Connection> = None;
    loop {
        let intended = {
            let mut queue = queue.lock().await;
            match queue.recv().await {
                Some(at) => at,
                None => return tally,
            }
        };
        let request = fixtures.next(options.scenario, &mut rng);
        if connection.is_none() {
            connection = Connection::open(&options.addr).await.ok();
        }
        let outcome = match connection.as_mut() {
            Some(c) => c.exchange(&request.bytes).await,
            None => Err(std::io::Error::other("connect failed")),
        };
        let micros = u64::try_from(intended.elapsed().as_micros()).unwrap_or(u64::MAX);
        tally.latencies.push(micros);
        match outcome {
            Ok(status) if (200..300).contains(&status) => {}
            Ok(_) => tally.errors += 1,
            Err(_) => {
                tally.errors += 1;
                connection = None;
            }
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    // Nearest rank: the smallest value at or above p of the samples.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    #[allow(clippy::cast_precision_loss)]
    let ms = sorted[index] as f64 / 1000.0;
    ms
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let options = match options() {
        Ok(o) => Arc::new(o),
        Err(message) => {
            eprintln!("loadgen: {message}");
            std::process::exit(2);
        }
    };
    let fixtures = match Fixtures::load(&options.fixtures) {
        Ok(f) => Arc::new(f),
        Err(message) => {
            eprintln!("loadgen: {message}");
            std::process::exit(2);
        }
    };
    let (sender, receiver) = mpsc::unbounded_channel();
    let queue = Arc::new(Mutex::new(receiver));
    let seed = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos()),
    )
    .unwrap_or(1);
    let workers: Vec<_> = (0..options.connections)
        .map(|i| {
            let seed =
                seed ^ (u64::try_from(i).unwrap_or(0) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            tokio::spawn(connection_loop(
                Arc::clone(&options),
                Arc::clone(&fixtures),
                Arc::clone(&queue),
                seed,
            ))
        })
        .collect();

    // The schedule: request i is due at start + i / rate. Whatever the timer's granularity,
    // each job carries its exact intended time.
    let start = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / options.rate);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let total = (options.rate * options.duration.as_secs_f64()).round() as u64;
    let mut sent = 0u64;
    while sent < total {
        let now = Instant::now();
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let due = (((now - start).as_secs_f64() * options.rate) as u64 + 1).min(total);
        while sent < due {
            let intended =
                start + interval.mul_f64(f64::from(u32::try_from(sent).unwrap_or(u32::MAX)));
            if sender.send(intended).is_err() {
                break;
            }
            sent += 1;
        }
        let next = start + interval.mul_f64(f64::from(u32::try_from(sent).unwrap_or(u32::MAX)));
        tokio::time::sleep_until(next).await;
    }
    drop(sender);
    let mut latencies = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    let mut errors = 0;
    for worker in workers {
        if let Ok(tally) = worker.await {
            latencies.extend(tally.latencies);
            errors += tally.errors;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    #[allow(clippy::cast_precision_loss)]
    let achieved = latencies.len() as f64 / elapsed;
    let report = serde_json::json!({
        "target_rate": options.rate,
        "duration_s": options.duration.as_secs_f64(),
        "elapsed_s": elapsed,
        "connections": options.connections,
        "sent": sent,
        "completed": latencies.len(),
        "errors": errors,
        "achieved_rate": achieved,
        "p50_ms": percentile(&latencies, 50.0),
        "p99_ms": percentile(&latencies, 99.0),
        "p999_ms": percentile(&latencies, 99.9),
        "max_ms": latencies.last().map_or(0.0, |&m| {
            #[allow(clippy::cast_precision_loss)]
            let ms = m as f64 / 1000.0;
            ms
        }),
    });
    println!("{report}");
}
