//! `tidesync-bench`: drives a real tidesync server (and, with `--compare`, a
//! pouchdb-server peer) over loopback and prints a table of figures.
//!
//! Every scenario starts its own server process on a fresh database, so
//! figures don't leak between scenarios, and server memory is read from
//! /proc for that process alone. Every loop is bounded in count and time.

mod bytes;
mod export;
mod heavy;
mod live;
mod others;
mod peer;
mod raw;
mod server;
mod sharing;
mod stats;
mod tidesync;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, ValueEnum};
use serde_json::{json, Value};

/// A scenario of the bench (`--only`); an unknown name is an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    Push,
    Update,
    Pull,
    Initial,
    Steady,
    Streams,
    Scale,
    Raw,
    Cascade,
    BigPages,
    Sharing,
    /// A shared space of big items exported by six members at once, and by
    /// clients that stop reading.
    Export,
    /// PostgreSQL only: 1, 2, 3 instances on one database.
    Instances,
    /// Deleting a space of items of 300 kB.
    BigCascade,
    /// One push editing one field of each of many items of 300 kB.
    BigUpdates,
    /// Four pushes at once of losing edits of items of 300 kB.
    Stale,
    /// Deleting an account of many records.
    AccountDelete,
    /// One user's pushes of 5 MiB back to back.
    Flood,
    /// Many long-polls of one user woken by one write.
    Wake,
}

#[derive(Parser, Debug, Clone)]
#[command(
    name = "tidesync-bench",
    about = "Benchmarks tidesync (and a CouchDB-protocol peer) on loopback"
)]
pub struct Args {
    /// The tidesync binary to start (build it first: `cargo build --release`).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/release/tidesync"))]
    pub server_bin: PathBuf,
    /// Also run every scenario on PostgreSQL (a fresh database per scenario,
    /// created and dropped through this admin URL).
    #[arg(long, env = "TIDESYNC_BENCH_POSTGRES_URL")]
    pub postgres_url: Option<String>,
    /// Run the same scenarios against pouchdb-server (installed from npm by
    /// bench/peers/pouchdb.sh) and print the ratio.
    #[arg(long)]
    pub compare: bool,
    /// Operations in the push, update and pull scenarios.
    #[arg(long, default_value_t = 10_000)]
    pub ops: usize,
    /// Operations per request in push and update.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Records in the account for the initial-sync scenario.
    #[arg(long, default_value_t = 100_000)]
    pub initial_records: usize,
    /// Concurrent devices for the steady-state scenario (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,32,256")]
    pub devices: Vec<usize>,
    /// Instance counts of the instances scenario (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    pub instances: Vec<usize>,
    /// Devices in the instances scenario, spread over the instances.
    #[arg(long, default_value_t = 32)]
    pub instance_devices: usize,
    /// Seconds each steady-state run lasts.
    #[arg(long, default_value_t = 10)]
    pub steady_secs: u64,
    /// Idle event streams opened in the streams scenario.
    #[arg(long, default_value_t = 10_000)]
    pub streams: usize,
    /// Users and records on the server in the scale scenario.
    #[arg(long, default_value_t = 10_000)]
    pub scale_users: usize,
    #[arg(long, default_value_t = 1_000_000)]
    pub scale_records: usize,
    /// Categories, and items, in the space the cascade scenario deletes.
    #[arg(long, default_value_t = 10_000)]
    pub cascade_size: usize,
    /// Items of the largest size (50,000-character notes) in the big-pages scenario.
    #[arg(long, default_value_t = 2_000)]
    pub big_records: usize,
    /// Items of 300 kB in the big-cascade, big-updates and stale scenarios
    /// (the last two use at most 1,000: one request).
    #[arg(long, default_value_t = 1_200)]
    pub big_items: usize,
    /// Records of the account the account-delete scenario deletes.
    #[arg(long, default_value_t = 50_000)]
    pub account_records: usize,
    /// Seconds the flood scenario lasts.
    #[arg(long, default_value_t = 10)]
    pub flood_secs: u64,
    /// Long-polls the wake scenario wakes with one write.
    #[arg(long, default_value_t = 90)]
    pub wake_polls: usize,
    /// Members of the shared space in the sharing scenario (owner included).
    #[arg(long, default_value_t = 100)]
    pub space_members: usize,
    /// Items in that shared space.
    #[arg(long, default_value_t = 10_000)]
    pub space_items: usize,
    /// Items of about 250 KB in the shared space of the export scenario
    /// (a handful for a quick smoke run).
    #[arg(long, default_value_t = 1_000)]
    pub export_items: usize,
    /// EXPORT_IDLE_TIMEOUT of the export scenario's server, in seconds.
    #[arg(long, default_value_t = 10)]
    pub export_idle_secs: u64,
    /// Scenarios to run (comma-separated).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "push,update,pull,initial,steady,streams,scale,raw,cascade,big-pages,sharing,export,instances"
    )]
    pub only: Vec<Scenario>,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One measured figure.
#[derive(Clone, Debug)]
pub struct Figure {
    pub scenario: String,
    pub target: String,
    pub value: f64,
    pub unit: &'static str,
    pub detail: String,
}

impl Figure {
    fn json(&self) -> Value {
        json!({"scenario": self.scenario, "target": self.target, "value": self.value,
               "unit": self.unit, "detail": self.detail})
    }
}

fn wants(args: &Args, s: Scenario) -> bool {
    args.only.contains(&s)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.server_bin.exists(),
        "{} not found: run `cargo build --release` first, or pass --server-bin",
        args.server_bin.display()
    );
    let mut figures: Vec<Figure> = Vec::new();
    let mut targets = vec![server::Target::Sqlite];
    if let Some(url) = &args.postgres_url {
        targets.push(server::Target::Postgres(url.clone()));
    }
    for t in &targets {
        eprintln!("== tidesync on {}", t.name());
        figures.extend(tidesync::run_all(&args, t).await?);
    }
    if args.compare {
        eprintln!("== pouchdb-server");
        figures.extend(peer::run_all(&args).await?);
    }
    if wants(&args, Scenario::Raw) {
        eprintln!("== raw SQLite insert limit");
        figures.extend(raw::run(&args).await?);
    }
    if args.json {
        let all: Vec<Value> = figures.iter().map(Figure::json).collect();
        println!("{}", serde_json::to_string_pretty(&all)?);
    } else {
        print_table(&figures);
    }
    Ok(())
}

fn print_table(figures: &[Figure]) {
    println!(
        "{:<34} {:<20} {:>14} {:<10} detail",
        "scenario", "target", "value", "unit"
    );
    for f in figures {
        println!(
            "{:<34} {:<20} {:>14.1} {:<10} {}",
            f.scenario, f.target, f.value, f.unit, f.detail
        );
    }
    // Ratios where both sides measured the same scenario.
    let find = |scenario: &str, target: &str| {
        figures
            .iter()
            .find(|f| f.scenario == scenario && f.target == target)
            .map(|f| f.value)
    };
    let mut printed = false;
    for s in [
        "push",
        "update",
        "pull",
        "steady c=1",
        "steady c=32",
        "steady c=256",
    ] {
        if let (Some(t), Some(p)) = (find(s, "tidesync/sqlite"), find(s, "pouchdb-server")) {
            if !printed {
                println!("\nratio tidesync/sqlite : pouchdb-server");
                printed = true;
            }
            println!("  {s:<14} {:>8.1}x", t / p);
        }
    }
    if let (Some(t), Some(r)) = (
        find("push", "tidesync/sqlite"),
        find("raw sqlite insert", "sqlite (no server)"),
    ) {
        println!(
            "\ntidesync push is {:.0}% of the raw SQLite insert rate",
            100.0 * t / r
        );
    }
}

pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}
