//! `tidesync import mongo DIR`: reads the original server's mongoexport
//! files, groups their documents by user, and imports user by user
//! (`Store::import_user`, one transaction each).
//!
//! The files are per collection, not per user, so the documents are first
//! spooled into bucket files by owner (a hash of the user's ObjectId);
//! then each bucket is read back, mapped (`tidesync_import::map`) and
//! imported. Memory is bounded by one bucket (about `BUCKET_BYTES` of
//! documents), not by the size of the export.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use tidesync_import::map::{self, Source, UserDocs};
use tidesync_import::read::{self, Format};
use tidesync_import::summary::Summary;
use tidesync_import::{owner, Collection};
use tidesync_store::{entity_index, ImportedAccount, ImportedUser, Store};

use crate::config::MongoImportArgs;

/// Export bytes per bucket. Parsed, a bucket takes many times this (16 MiB
/// peaked near 480 MiB on the 1M-record bench, 4 MiB at 88 MiB).
const BUCKET_BYTES: u64 = 4 << 20;
const MAX_BUCKETS: u64 = 512;
/// Users being stored at once: enough for SQLite's writer to commit
/// several in one group (one fsync), few enough to bound memory.
const IN_FLIGHT: usize = 8;

/// A folder removed when dropped.
struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub async fn mongo(args: &MongoImportArgs) -> anyhow::Result<Summary> {
    let dir = args.dir.clone();
    std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?;
    let users = dir.join(Collection::Users.file_name());
    File::open(&users).with_context(|| {
        format!(
            "cannot read {} (mongoexport --collection=users)",
            users.display()
        )
    })?;
    let store = if args.dry_run {
        None
    } else {
        let s = crate::db::connect(
            &args.database.database_url,
            &crate::db::DbOptions::from_database(&args.database),
        )
        .await
        .context("opening the database")?;
        s.migrate().await.context("applying migrations")?;
        Some(s)
    };
    let base = args.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    let work = WorkDir(base.join(format!(
        "tidesync-import-{}-{}",
        std::process::id(),
        tidesync_protocol::time::now_millis()
    )));
    tidesync_store::create_private_dir(&work.0)
        .with_context(|| format!("cannot create {}", work.0.display()))?;
    let spool_dir = work.0.clone();
    let reading = crate::progress::counter("documents");
    reading.set_message("reading the export");
    let (mut summary, buckets) = {
        let reading = reading.clone();
        tokio::task::spawn_blocking(move || spool(&dir, &spool_dir, &reading)).await??
    };
    reading.finish_and_clear();
    summary.dry_run = args.dry_run;
    let importing = crate::progress::steps(buckets.len() as u64, "parts");
    importing.set_message(if args.dry_run {
        "checking"
    } else {
        "importing"
    });
    for (i, bucket) in buckets.iter().enumerate() {
        let path = bucket.clone();
        let (users, part) = tokio::task::spawn_blocking(move || map_bucket(&path)).await??;
        merge(&mut summary, part);
        let n = users.len();
        match &store {
            Some(store) => store_users(store, users, &mut summary).await?,
            None => {
                for u in &users {
                    for (c, k) in map::kept(u) {
                        summary.count(c).imported += k;
                    }
                }
            }
        }
        if importing.is_hidden() {
            tracing::info!(bucket = i + 1, of = buckets.len(), users = n, "imported");
        } else {
            let users = summary.count(Collection::Users);
            let done = users.imported + users.present;
            importing.set_message(format!("{done} users done"));
        }
        importing.inc(1);
        let _ = std::fs::remove_file(bucket);
    }
    importing.finish_and_clear();
    if let Some(store) = store {
        store.close().await;
    }
    Ok(summary)
}

/// Reads every collection file and writes each document to its owner's
/// bucket as `collection \t where \t json`. Returns the bucket files.
fn spool(
    dir: &Path,
    work: &Path,
    reading: &indicatif::ProgressBar,
) -> anyhow::Result<(Summary, Vec<PathBuf>)> {
    let mut summary = Summary::default();
    let total: u64 = Collection::ALL
        .iter()
        .filter_map(|c| std::fs::metadata(dir.join(c.file_name())).ok())
        .map(|m| m.len())
        .sum();
    let k = (total / BUCKET_BYTES + 1).min(MAX_BUCKETS) as usize;
    let paths: Vec<PathBuf> = (0..k).map(|i| work.join(format!("bucket-{i}"))).collect();
    let mut out = paths
        .iter()
        .map(|p| File::create(p).map(BufWriter::new))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("cannot write in {}", work.display()))?;
    for c in Collection::ALL {
        let name = c.file_name();
        let path = dir.join(&name);
        if !path.exists() {
            summary
                .files
                .push(format!("{name}: not found, nothing read"));
            continue;
        }
        let mut n = 0u64;
        let mut failed: Option<std::io::Error> = None;
        let format = read::documents(&path, |loc, doc| {
            n += 1;
            reading.inc(1);
            let at = format!("{name} {loc}");
            let doc = match doc {
                Ok(d) => d,
                Err(e) => return summary.skip(c, "not JSON", || format!("{at}: {e}")),
            };
            let Some(who) = owner(c, &doc) else {
                let why = if c == Collection::Users {
                    "_id is not an ObjectId"
                } else {
                    "no userId ObjectId"
                };
                return summary.skip(c, why, || at);
            };
            let line = format!("{}\t{at}\t{doc}\n", c.index());
            if let Err(e) = out[bucket_of(&who, k)].write_all(line.as_bytes()) {
                failed.get_or_insert(e);
            }
        })
        .with_context(|| format!("cannot read {}", path.display()))?;
        if let Some(e) = failed {
            return Err(e).context("writing the spool");
        }
        let form = match format {
            Format::Array => "JSON array",
            Format::Lines => "one document per line",
        };
        summary
            .files
            .push(format!("{name}: {n} documents ({form})"));
    }
    for w in &mut out {
        w.flush().context("writing the spool")?;
    }
    Ok((summary, paths))
}

/// FNV-1a of the owner's hex: any stable spread will do.
fn bucket_of(owner: &str, k: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in owner.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    (h % k as u64) as usize
}

/// One bucket's users, mapped, in ObjectId order.
fn map_bucket(path: &Path) -> anyhow::Result<(Vec<ImportedUser>, Summary)> {
    let mut by_owner: BTreeMap<String, UserDocs> = BTreeMap::new();
    let mut summary = Summary::default();
    for line in BufReader::new(File::open(path)?).lines() {
        let line = line?;
        let mut parts = line.splitn(3, '\t');
        let (Some(c), Some(at), Some(json)) = (parts.next(), parts.next(), parts.next()) else {
            anyhow::bail!("spool line unreadable");
        };
        let c = c
            .parse()
            .ok()
            .and_then(Collection::from_index)
            .context("spool line unreadable")?;
        let doc: serde_json::Value = serde_json::from_str(json)?;
        let who = owner(c, &doc).context("spool line without owner")?;
        by_owner.entry(who).or_default().push(
            c,
            Source {
                doc,
                at: at.to_owned(),
            },
        );
    }
    let users = by_owner
        .into_iter()
        .filter_map(|(who, docs)| map::map_user(&who, docs, &mut summary))
        .collect();
    Ok((users, summary))
}

fn merge(into: &mut Summary, part: Summary) {
    for (i, c) in part.counts.iter().enumerate() {
        into.counts[i].imported += c.imported;
        into.counts[i].present += c.present;
        into.counts[i].skipped += c.skipped;
    }
    for (reason, s) in part.skipped {
        let e = into.skipped.entry(reason).or_default();
        e.count += s.count;
        for x in s.examples {
            if e.examples.len() < 3 {
                e.examples.push(x);
            }
        }
    }
    for (k, n) in part.stripped {
        *into.stripped.entry(k).or_default() += n;
    }
    for (k, n) in part.cast {
        *into.cast.entry(k).or_default() += n;
    }
    into.cascaded += part.cascaded;
}

/// Imports users, a few at a time; stops at the first store failure (what
/// was committed stays: a re-run leaves it alone and goes on).
async fn store_users(
    store: &Arc<dyn Store>,
    users: Vec<ImportedUser>,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let mut running = tokio::task::JoinSet::new();
    let mut users = users.into_iter();
    loop {
        while running.len() < IN_FLIGHT {
            let Some(u) = users.next() else { break };
            let store = store.clone();
            running.spawn(async move {
                let kept = map::kept(&u);
                let email = u.email.clone();
                (store.import_user(u).await, kept, email)
            });
        }
        let Some(done) = running.join_next().await else {
            return Ok(());
        };
        let (outcome, kept, email) = done?;
        let o = outcome.context("importing a user; what was imported before is committed, and a re-run goes on from there")?;
        match o.account {
            ImportedAccount::Created => summary.count(Collection::Users).imported += 1,
            ImportedAccount::AlreadyPresent => summary.count(Collection::Users).present += 1,
            ImportedAccount::EmailTaken => {
                for (c, n) in kept {
                    for _ in 0..n {
                        let why = if c == Collection::Users {
                            "email already registered by another account"
                        } else {
                            "owner skipped (email already registered by another account)"
                        };
                        summary.skip(c, why, || email.clone());
                    }
                }
                continue;
            }
        }
        for c in [
            Collection::Spaces,
            Collection::Categories,
            Collection::Items,
        ] {
            let i = entity_index(c.entity().expect("a record collection"));
            summary.count(c).imported += o.inserted[i];
            summary.count(c).present += o.present[i];
        }
        summary.count(Collection::Synclogs).imported += o.logs_inserted;
        summary.count(Collection::Synclogs).present += o.logs_present;
    }
}
