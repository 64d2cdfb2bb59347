//! The receiving side of LISTEN/NOTIFY: one direct connection per instance
//! that relays every instance's commits to this one's streams.

use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use tidesync_protocol::ScopeId;
use tidesync_store::{Announcement, ChangeNote};
use tokio::sync::broadcast;

use crate::CHANNEL;

/// How long the connection may stay silent before it is asked whether it
/// is still there. Across a partition, or once the database has forgotten
/// it (a restart, a failover), a connection that only listens never sends
/// and so never learns that it is dead: it would wait for notices forever.
const PROBE_AFTER: Duration = Duration::from_secs(5);
/// How long that question, or one attempt to connect again, may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The inverse of `note_payload` and `notify_revoked` (lib.rs).
pub(crate) fn parse(payload: &str) -> Option<Announcement> {
    if let Some(user) = payload.strip_prefix("r:") {
        return Some(Announcement::Revoked(user.parse().ok()?));
    }
    parse_note(payload).map(Announcement::Change)
}

fn parse_note(payload: &str) -> Option<ChangeNote> {
    if let Some(rest) = payload.strip_prefix("m:") {
        let (scope, user) = rest.split_once(':')?;
        return Some(ChangeNote {
            scope: ScopeId::new(scope.parse().ok()?),
            version: 0,
            user: user.parse().ok()?,
            device: String::new(),
            membership: true,
        });
    }
    let mut parts = payload.splitn(4, ':');
    Some(ChangeNote {
        scope: ScopeId::new(parts.next()?.parse().ok()?),
        version: parts.next()?.parse().ok()?,
        user: parts.next()?.parse().ok()?,
        device: parts.next()?.to_owned(),
        membership: false,
    })
}

/// A connection LISTENing on [`CHANNEL`]. LISTEN is session state, so it
/// has a connection of its own to `url`: direct, not through a transaction
/// pooler.
pub(crate) async fn listener(url: &str) -> Result<PgListener, sqlx::Error> {
    let mut l = PgListener::connect(url).await?;
    l.listen(CHANNEL).await?;
    Ok(l)
}

/// Forwards this database's change notifications to the instance, until the
/// pool closes. A connection that fails, or does not answer a probe after
/// [`PROBE_AFTER`] of silence, is replaced; notices sent meanwhile are lost,
/// so [`Announcement::Gap`] then tells every stream on this instance to
/// reread its heads (the next pull finds every change either way).
pub(crate) async fn listen(
    mut l: PgListener,
    url: String,
    pool: PgPool,
    notes: broadcast::Sender<Announcement>,
) {
    loop {
        if pool.is_closed() {
            return;
        }
        let lost = match tokio::time::timeout(PROBE_AFTER, l.try_recv()).await {
            Ok(Ok(Some(n))) => {
                if let Some(a) = parse(n.payload()) {
                    let _ = notes.send(a);
                }
                continue;
            }
            // sqlx noticed the loss and connected again by itself.
            Ok(Ok(None)) => {
                tracing::warn!("change notifications: connection lost and re-established");
                let _ = notes.send(Announcement::Gap);
                continue;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_silent) => {
                let probe = sqlx::raw_sql("SELECT 1").execute(&mut l);
                match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
                    Ok(Ok(_)) => continue,
                    Ok(Err(e)) => e.to_string(),
                    Err(_) => format!("no answer to a probe within {PROBE_TIMEOUT:?}"),
                }
            }
        };
        tracing::warn!(error = %lost, "change notifications interrupted");
        loop {
            if pool.is_closed() {
                return;
            }
            match tokio::time::timeout(PROBE_TIMEOUT, listener(&url)).await {
                Ok(Ok(fresh)) => {
                    // The old connection is dropped here, without waiting on it.
                    l = fresh;
                    tracing::info!("change notifications: listening again");
                    let _ = notes.send(Announcement::Gap);
                    break;
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "change notifications: reconnecting"),
                Err(_) => tracing::warn!("change notifications: reconnecting timed out"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}
