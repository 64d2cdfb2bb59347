//! A reference backend in memory: what a real backend does, minus SQL.

use std::collections::{BTreeMap, HashMap};

use tidesync_protocol::cursor::CursorStart;
use tidesync_protocol::merge;
use tidesync_protocol::sync::ChangeInput;
use tidesync_protocol::RecordId;

use crate::page::plan_pull;
use crate::{
    EngineError, Loaded, Need, Page, PageQuery, PulledRecord, Push, PushInput, RecordWrite,
    StoredRecord, SyncOutput,
};

pub const NOW: i64 = 1_735_689_600_000 + 86_400_000;
pub const SKEW: i64 = 300_000;

#[derive(Default)]
pub struct MemDb {
    pub head: i64,
    pub rows: BTreeMap<RecordId, RecordWrite>,
    pub log: HashMap<String, String>,
    /// Every need of the last push, in order.
    pub needs: Vec<Need>,
    /// Rows the last push loaded, in all.
    pub rows_loaded: usize,
}

impl MemDb {
    fn stored(row: &RecordWrite) -> StoredRecord {
        StoredRecord {
            id: row.id,
            entity: row.entity,
            version: row.version,
            state: merge::decode_state(&row.data, &row.clocks).expect("stored state decodes"),
        }
    }

    fn load(&mut self, need: &Need) -> Loaded {
        match need {
            Need::Batch {
                operation_ids,
                ids,
                first_since,
            } => {
                let acks = operation_ids
                    .iter()
                    .filter_map(|op| self.log.get(op).map(|a| (op.clone(), a.clone())))
                    .collect();
                let records: Vec<StoredRecord> = ids
                    .iter()
                    .filter_map(|id| self.rows.get(id))
                    .map(Self::stored)
                    .collect();
                self.rows_loaded += records.len();
                let first_since = first_since.and_then(|ms| {
                    self.rows
                        .values()
                        .filter(|r| r.server_time >= ms)
                        .map(|r| r.version)
                        .min()
                });
                Loaded::Batch {
                    acks,
                    records,
                    first_since,
                }
            }
            Need::Children {
                spaces,
                categories,
                loaded_spaces,
            } => {
                let records: Vec<StoredRecord> = self
                    .rows
                    .values()
                    .filter(|r| r.deleted_at.is_none())
                    .filter(|r| {
                        r.space_id.is_some_and(|s| spaces.contains(&s))
                            || (r.category_id.is_some_and(|c| categories.contains(&c))
                                && !r.space_id.is_some_and(|s| loaded_spaces.contains(&s)))
                    })
                    .map(Self::stored)
                    .collect();
                self.rows_loaded += records.len();
                Loaded::Children(records)
            }
        }
    }

    pub fn page(&self, q: PageQuery) -> Page {
        let mut rows: Vec<&RecordWrite> = self
            .rows
            .values()
            .filter(|r| r.version > q.after && r.version <= q.upto)
            .filter(|r| !q.live_only || r.deleted_at.is_none())
            .collect();
        rows.sort_by_key(|r| r.version);
        let mut b = q.builder();
        for r in rows.into_iter().take(q.rows()) {
            if !b.offer(r.to_pulled()) {
                break;
            }
        }
        b.finish()
    }

    pub fn push_with(
        &mut self,
        device: &str,
        cursor: CursorStart,
        changes: Vec<ChangeInput>,
        limit: usize,
        max_page_bytes: usize,
    ) -> Result<SyncOutput, EngineError> {
        let input = PushInput {
            device_id: device.into(),
            cursor,
            changes,
            limit,
            max_page_bytes,
            now: NOW,
            max_skew: SKEW,
        };
        self.needs.clear();
        self.rows_loaded = 0;
        let mut push = Push::new(input, self.head);
        while let Some(need) = push.need() {
            self.needs.push(need.clone());
            let loaded = self.load(&need);
            push.feed(loaded)?;
        }
        let plan = push.finish()?;
        for w in &plan.upserts {
            assert!(w.version > self.head, "new versions are above the old head");
            self.rows.insert(w.id, w.clone());
        }
        for l in &plan.logs {
            assert!(
                self.log
                    .insert(l.operation_id.clone(), l.ack.clone())
                    .is_none(),
                "an operation id is logged once"
            );
        }
        if plan.wrote {
            self.head = plan.head;
        }
        let page = self.page(plan.page);
        Ok(plan.respond(page))
    }

    pub fn push(
        &mut self,
        device: &str,
        cursor: CursorStart,
        changes: Vec<ChangeInput>,
    ) -> SyncOutput {
        self.push_with(device, cursor, changes, 1000, usize::MAX)
            .expect("push")
    }

    pub fn pull(&self, cursor: CursorStart, limit: usize, max_bytes: usize) -> SyncOutput {
        let first = crate::page::needs_first_since(cursor).and_then(|ms| {
            self.rows
                .values()
                .filter(|r| r.server_time >= ms)
                .map(|r| r.version)
                .min()
        });
        let q = plan_pull(cursor, self.head, first, limit, max_bytes).expect("pull");
        SyncOutput::pulled(self.page(q), self.head)
    }

    pub fn record(&self, n: u128) -> &RecordWrite {
        &self.rows[&super::id(n)]
    }

    pub fn field(&self, n: u128, name: &str) -> serde_json::Value {
        let data: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&self.record(n).data).unwrap();
        data.get(name).cloned().unwrap_or(serde_json::Value::Null)
    }
}

pub fn ids(records: &[PulledRecord]) -> Vec<RecordId> {
    records.iter().map(|r| r.id).collect()
}
