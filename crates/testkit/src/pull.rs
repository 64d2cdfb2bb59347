//! Pull-everything for tests: page to the end, bounded, records by id.

use std::collections::BTreeMap;

use serde_json::Value;
use tidesync_client::Client;

use crate::builders::by_id;

/// Pages a test may take before "pull did not finish" fails it.
pub const MAX_PAGES: usize = 10_000;

/// What a pull to the end received.
pub struct Everything {
    /// Every record received, parsed, by id (later pages replace earlier).
    pub by_id: BTreeMap<String, Value>,
    /// The cursor after the last page.
    pub cursor: String,
    pub pages: usize,
}

impl Everything {
    /// The records that are not tombstones.
    pub fn live(&self) -> BTreeMap<&String, &Value> {
        self.by_id
            .iter()
            .filter(|(_, r)| r["deletedAt"].is_null())
            .collect()
    }
}

/// Pulls from `cursor` to the end as device `device` (no changes sent),
/// `limit` per page. Panics with `context` on any error or after
/// [`MAX_PAGES`] pages.
pub async fn pull_everything(
    client: &Client,
    device: &str,
    cursor: Option<&str>,
    limit: Option<usize>,
    context: &str,
) -> Everything {
    let mut pager = client.pages(device, cursor, limit);
    let mut out = BTreeMap::new();
    while let Some(page) = pager
        .next_page()
        .await
        .unwrap_or_else(|e| panic!("{context}: pull from {:?}: {e}", pager.cursor()))
    {
        out.extend(by_id(&page.updates));
        assert!(
            pager.pages() < MAX_PAGES,
            "{context}: still hasMore after {MAX_PAGES} pages of {limit:?}"
        );
    }
    Everything {
        by_id: out,
        cursor: pager.cursor().unwrap_or_default().to_owned(),
        pages: pager.pages(),
    }
}
