//! Writes deterministic fake mongoexport files of the original server (see
//! `tidesync_testkit::mongo`), for timing `tidesync import mongo`:
//!
//! ```sh
//! cargo run --release -p tidesync-bench --bin mongo-fixtures -- \
//!     --users 10000 --records-per-user 100 --out /tmp/export
//! ```

use std::path::PathBuf;

use clap::Parser;
use tidesync_testkit::mongo::{generate, MongoFixture};

#[derive(Parser)]
#[command(about = "Writes fake mongoexport files (users, spaces, categories, items, synclogs)")]
struct Args {
    #[arg(long, default_value_t = 10)]
    users: usize,
    /// Spaces, categories and items per user.
    #[arg(long, default_value_t = 100)]
    records_per_user: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The first record's createdAt (ISO-8601). The files are the same for
    /// the same seed and base. Default: ten days ago, so that no retention
    /// horizon is reached.
    #[arg(long)]
    base: Option<String>,
    /// The folder to write (created if missing).
    #[arg(long)]
    out: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    std::fs::create_dir_all(&a.out)?;
    let g = generate(
        &a.out,
        &MongoFixture {
            users: a.users,
            records_per_user: a.records_per_user,
            base: match &a.base {
                Some(iso) => tidesync_protocol::time::parse_iso(iso).ok_or_else(|| {
                    anyhow::anyhow!("--base {iso:?} is not an ISO-8601 date-time")
                })?,
                None => tidesync_protocol::time::now_millis() - 10 * 86_400_000,
            },
            seed: a.seed,
            anomalies: true,
        },
    )?;
    let names = ["users", "spaces", "categories", "items", "synclogs"];
    for (i, n) in names.iter().enumerate() {
        println!("{n}: {} valid, {} invalid", g.valid[i], g.invalid[i]);
    }
    Ok(())
}
