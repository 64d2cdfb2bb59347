//! Paging: follow `hasMore` until the client is up to date.

use tidesync_protocol::sync::ServerUpdates;

use crate::{Client, Error, Result, SyncBody};

/// One page of a pull, from either endpoint.
#[derive(Debug)]
pub struct Page {
    pub updates: ServerUpdates,
    pub sync_timestamp: String,
    pub has_more: bool,
    /// Shared spaces the user no longer belongs to: delete the local copies
    /// of each and of everything in it, before applying `updates`.
    pub removed_spaces: Vec<tidesync_protocol::RecordId>,
}

/// Pulls page after page, each from the cursor the previous one returned.
/// Store [`Pager::cursor`] together with each page's records you applied.
#[derive(Debug)]
pub struct Pager {
    client: Client,
    /// `Some`: `POST /api/sync` as this device; `None`: `GET /api/sync/initial`.
    device_id: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
    finished: bool,
    pages: usize,
    response_bytes: usize,
}

/// Every page of a pull, concatenated.
#[derive(Debug)]
pub struct PullAll {
    /// The records of every page, in the order received.
    pub updates: ServerUpdates,
    /// Where the next pull starts.
    pub sync_timestamp: String,
    pub pages: usize,
    /// Response body bytes received, all pages together.
    pub response_bytes: usize,
}

impl Pager {
    pub(crate) fn new(
        client: Client,
        device_id: Option<String>,
        cursor: Option<&str>,
        limit: Option<usize>,
    ) -> Self {
        Pager {
            client,
            device_id,
            cursor: cursor.map(Into::into),
            limit,
            finished: false,
            pages: 0,
            response_bytes: 0,
        }
    }

    /// The next page, or `None` once a page said `hasMore: false`.
    pub async fn next_page(&mut self) -> Result<Option<Page>> {
        if self.finished {
            return Ok(None);
        }
        let cursor = self.cursor.as_deref();
        let (page, bytes) = match &self.device_id {
            Some(device) => {
                let body = SyncBody {
                    device_id: device.clone(),
                    last_sync_timestamp: cursor.map(Into::into),
                    limit: self.limit,
                    ..SyncBody::default()
                };
                let (r, info) = self.client.sync_with_info(&body).await?;
                (
                    Page {
                        updates: r.server_updates,
                        sync_timestamp: r.sync_timestamp,
                        has_more: r.has_more,
                        removed_spaces: r.removed_spaces,
                    },
                    info.response_bytes,
                )
            }
            None => {
                let (r, info) = self.client.initial_with_info(cursor, self.limit).await?;
                (
                    Page {
                        updates: ServerUpdates {
                            spaces: r.spaces,
                            categories: r.categories,
                            items: r.items,
                        },
                        sync_timestamp: r.sync_timestamp,
                        has_more: r.has_more,
                        removed_spaces: r.removed_spaces,
                    },
                    info.response_bytes,
                )
            }
        };
        // A page that says "more" must move the cursor, or paging never ends.
        if page.has_more && self.cursor.as_deref() == Some(page.sync_timestamp.as_str()) {
            return Err(Error::Protocol(format!(
                "hasMore with the cursor unchanged at {}",
                page.sync_timestamp
            )));
        }
        self.pages += 1;
        self.response_bytes += bytes;
        self.finished = !page.has_more;
        self.cursor = Some(page.sync_timestamp.clone());
        Ok(Some(page))
    }

    /// The cursor after the last page received (the start, before any).
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    pub fn pages(&self) -> usize {
        self.pages
    }

    pub fn response_bytes(&self) -> usize {
        self.response_bytes
    }

    /// Every remaining page, concatenated.
    pub async fn collect(mut self) -> Result<PullAll> {
        let mut updates = ServerUpdates::default();
        while let Some(page) = self.next_page().await? {
            updates.spaces.extend(page.updates.spaces);
            updates.categories.extend(page.updates.categories);
            updates.items.extend(page.updates.items);
        }
        Ok(PullAll {
            updates,
            sync_timestamp: self.cursor.unwrap_or_default(),
            pages: self.pages,
            response_bytes: self.response_bytes,
        })
    }
}
