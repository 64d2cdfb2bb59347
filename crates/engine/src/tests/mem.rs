//! A reference backend in memory: what a real backend does, minus SQL.
//! Several users, each with a personal scope; shared scopes with members.

use std::collections::{BTreeMap, HashMap};

use tidesync_protocol::cursor::CursorStart;
use tidesync_protocol::merge;
use tidesync_protocol::sync::ChangeInput;
use tidesync_protocol::{RecordId, Role, ScopeId, UserId};

use crate::page::{self, FirstSince, PageQuery};
use crate::view::{ScopeView, View};
use crate::{
    EngineError, Loaded, Need, Page, Push, PushInput, PushLimits, RecordWrite, StoredRecord,
    SyncOutput,
};

pub const NOW: i64 = 1_735_689_600_000 + 86_400_000;
pub const SKEW: i64 = 300_000;

pub fn user(n: u128) -> UserId {
    UserId::from_uuid(tidesync_protocol::uuid::Uuid::from_u128(0xA000 + n))
}

/// The user of the single-user tests.
pub fn alice() -> UserId {
    user(1)
}

/// What a test does between two transactions of a push.
pub type Hook = Box<dyn FnMut(&mut MemDb)>;

#[derive(Default)]
pub struct MemDb {
    /// Scope → (counter, the shared space it holds).
    pub scopes: BTreeMap<ScopeId, (i64, Option<RecordId>)>,
    pub members: BTreeMap<(ScopeId, UserId), Role>,
    pub personal: HashMap<UserId, ScopeId>,
    pub rows: BTreeMap<(ScopeId, RecordId), RecordWrite>,
    pub log: HashMap<(UserId, String), String>,
    /// Every need of the last push, in order.
    pub needs: Vec<Need>,
    /// Rows the last push loaded, in all.
    pub rows_loaded: usize,
    /// Bytes (as stored) of the records each transaction of the last push
    /// loaded with their content.
    pub run_loads: Vec<usize>,
    /// What one transaction of a push may do (see `PushLimits`).
    pub limits: PushLimits,
    /// Steps the last push committed before it ended.
    pub steps: usize,
    /// Between the transactions of a push in steps, what another client
    /// does (the test's hook, run after each step).
    pub between_steps: Option<Hook>,
}

impl MemDb {
    pub fn new() -> MemDb {
        let mut db = MemDb::default();
        db.add_user(alice());
        db
    }

    pub fn add_user(&mut self, u: UserId) -> ScopeId {
        let scope = ScopeId::new(self.scopes.len() as i64 + 1);
        self.scopes.insert(scope, (0, None));
        self.members.insert((scope, u), Role::Owner);
        self.personal.insert(u, scope);
        scope
    }

    /// Alice's personal counter.
    pub fn head(&self) -> i64 {
        self.scopes[&self.personal[&alice()]].0
    }

    pub fn scope_head(&self, s: ScopeId) -> i64 {
        self.scopes[&s].0
    }

    /// Shares a space of its owner's personal scope with `member`: what the
    /// backends do when the first member is added. Returns the new scope.
    pub fn share(&mut self, owner: UserId, space: RecordId, member: UserId, role: Role) -> ScopeId {
        let from = self.personal[&owner];
        let existing = self
            .scopes
            .iter()
            .find(|(_, (_, sp))| *sp == Some(space))
            .map(|(s, _)| *s);
        let scope = existing.unwrap_or_else(|| {
            let scope = ScopeId::new(self.scopes.len() as i64 + 1);
            self.scopes.insert(scope, (0, Some(space)));
            self.members.insert((scope, owner), Role::Owner);
            let under = self.under(from, space, false);
            let moving: Vec<(ScopeId, RecordId)> = self
                .rows
                .values()
                .filter(|r| r.scope == from && (r.id == space || under.contains(&r.id)))
                .map(|r| (r.scope, r.id))
                .collect();
            let mut rows: Vec<RecordWrite> = moving
                .iter()
                .map(|k| self.rows.remove(k).unwrap())
                .collect();
            rows.sort_by_key(|r| r.version);
            for mut r in rows {
                let head = &mut self.scopes.get_mut(&scope).unwrap().0;
                *head += 1;
                r.version = *head;
                r.scope = scope;
                self.rows.insert((scope, r.id), r);
            }
            scope
        });
        self.members.insert((scope, member), role);
        scope
    }

    pub fn view(&self, u: UserId) -> View {
        let personal = self.personal[&u];
        View {
            user: u,
            personal,
            scopes: self
                .members
                .iter()
                .filter(|((_, m), _)| *m == u)
                .map(|((s, _), role)| ScopeView {
                    id: *s,
                    role: *role,
                    space: self.scopes[s].1,
                    head: self.scopes[s].0,
                    collected: 0,
                    // The user created the space record the scope holds.
                    founder: self.scopes[s].1.is_some_and(|space| {
                        self.rows
                            .get(&(*s, space))
                            .is_some_and(|r| r.created_by == u)
                    }),
                })
                .collect(),
        }
    }

    fn stored(row: &RecordWrite) -> StoredRecord {
        StoredRecord {
            scope: row.scope,
            id: row.id,
            entity: row.entity,
            version: row.version,
            state: merge::decode_state(&row.data, &row.clocks).expect("stored state decodes"),
            created_by: row.created_by,
            bytes: row.data.len(),
        }
    }

    /// The records of `scope` under `root`: those naming it as their
    /// `root_id` or `parent_id`, and so on down the `parent_id` chains
    /// (live ones only with `live`).
    fn under(&self, scope: ScopeId, root: RecordId, live: bool) -> Vec<RecordId> {
        let mut found: Vec<RecordId> = vec![];
        let mut up = vec![root];
        loop {
            let more: Vec<RecordId> = self
                .rows
                .values()
                .filter(|r| r.scope == scope && !(live && r.deleted_at.is_some()))
                .filter(|r| !found.contains(&r.id))
                .filter(|r| r.root_id == Some(root) || r.parent_id.is_some_and(|p| up.contains(&p)))
                .map(|r| r.id)
                .collect();
            if more.is_empty() {
                return found;
            }
            found.extend(&more);
            up.extend(more);
        }
    }

    /// A record as a cascade reads it: without its content.
    fn light(row: &RecordWrite) -> StoredRecord {
        StoredRecord::light(
            row.scope,
            row.id,
            row.entity,
            row.version,
            row.root_id,
            row.parent_id,
            &row.clocks,
            row.created_by,
            row.data.len(),
        )
        .expect("stored clocks decode")
    }

    /// Looks the ids up in order, as PostgreSQL does: once the records
    /// loaded hold `max_bytes`, the rest are left (the first always read).
    fn by_ids(
        &mut self,
        ids: &[RecordId],
        scopes: &[ScopeId],
        max_bytes: Option<usize>,
    ) -> (Vec<StoredRecord>, usize) {
        let (mut out, mut bytes, mut looked_up) = (Vec::new(), 0, 0);
        for id in ids {
            if looked_up > 0 && max_bytes.is_some_and(|m| bytes >= m) {
                break;
            }
            looked_up += 1;
            for r in self.rows.values() {
                if r.id == *id && scopes.contains(&r.scope) {
                    bytes += r.data.len();
                    out.push(Self::stored(r));
                    if let Some(last) = self.run_loads.last_mut() {
                        *last += r.data.len();
                    }
                }
            }
        }
        self.rows_loaded += out.len();
        (out, looked_up)
    }

    fn first_since(&self, u: UserId, ms: Option<i64>) -> FirstSince {
        let Some(ms) = ms else {
            return FirstSince::new();
        };
        let mut out = FirstSince::new();
        for s in self.view(u).readable() {
            if let Some(v) = self
                .rows
                .values()
                .filter(|r| r.scope == s.id && r.server_time >= ms)
                .map(|r| r.version)
                .min()
            {
                out.insert(s.id, v);
            }
        }
        out
    }

    fn load(&mut self, u: UserId, need: &Need) -> Loaded {
        match need {
            Need::View => Loaded::View(self.view(u)),
            Need::Locate { ids, scopes } => Loaded::Located(
                self.rows
                    .values()
                    .filter(|r| scopes.contains(&r.scope) && ids.contains(&r.id))
                    .map(|r| (r.id, r.scope))
                    .collect(),
            ),
            Need::Batch {
                lock,
                operation_ids,
                ids,
                scopes,
                first_since,
                max_bytes,
            } => {
                assert!(
                    lock.windows(2).all(|w| w[0] < w[1]),
                    "locks in ascending order"
                );
                let locked = lock
                    .iter()
                    .map(|s| {
                        (
                            *s,
                            self.scopes[s].0,
                            self.members.get(&(*s, u)).copied().unwrap_or(Role::Removed),
                        )
                    })
                    .collect();
                let acks = operation_ids
                    .iter()
                    .filter_map(|op| {
                        self.log
                            .get(&(u, op.clone()))
                            .map(|a| (op.clone(), a.clone()))
                    })
                    .collect();
                let (records, looked_up) = self.by_ids(ids, scopes, *max_bytes);
                Loaded::Batch {
                    locked,
                    acks,
                    records,
                    first_since: self.first_since(u, *first_since),
                    looked_up,
                }
            }
            Need::Records {
                ids,
                scopes,
                max_bytes,
            } => {
                let (records, looked_up) = self.by_ids(ids, scopes, *max_bytes);
                Loaded::Records { records, looked_up }
            }
            Need::Children {
                scope,
                roots,
                parents,
                loaded_roots,
            } => {
                let records: Vec<StoredRecord> = self
                    .rows
                    .values()
                    .filter(|r| r.scope == *scope && r.deleted_at.is_none())
                    .filter(|r| {
                        r.root_id.is_some_and(|s| roots.contains(&s))
                            || (r.parent_id.is_some_and(|c| parents.contains(&c))
                                && !r.root_id.is_some_and(|s| loaded_roots.contains(&s)))
                    })
                    .map(Self::light)
                    .collect();
                self.rows_loaded += records.len();
                Loaded::Children(records)
            }
            Need::Descendants {
                scope,
                root,
                kinds,
                inner,
                limit,
            } => {
                let live = |r: &&RecordWrite| r.scope == *scope && r.deleted_at.is_none();
                let under = self.under(*scope, *root, true);
                let mut up: Vec<RecordId> = self
                    .rows
                    .values()
                    .filter(live)
                    .filter(|r| inner.contains(&r.entity) && under.contains(&r.id))
                    .map(|r| r.id)
                    .collect();
                up.push(*root);
                let records: Vec<StoredRecord> = kinds
                    .iter()
                    .flat_map(|kind| {
                        self.rows.values().filter(live).filter(|r| {
                            r.entity == *kind
                                && (r.root_id == Some(*root)
                                    || r.parent_id.is_some_and(|c| up.contains(&c)))
                        })
                    })
                    .take(*limit)
                    .map(Self::light)
                    .collect();
                self.rows_loaded += records.len();
                Loaded::Descendants(records)
            }
        }
    }

    pub fn page(&self, q: PageQuery) -> Page {
        let mut b = q.builder();
        let ranges = b.ranges().to_vec();
        for (i, r) in ranges.iter().enumerate() {
            let n = b.begin(i);
            let mut rows: Vec<&RecordWrite> = self
                .rows
                .values()
                .filter(|w| w.scope == r.scope && w.version > r.after && w.version <= r.upto)
                .filter(|w| !r.live_only || w.deleted_at.is_none())
                .collect();
            rows.sort_by_key(|w| w.version);
            for w in rows.into_iter().take(n) {
                if !b.offer(w.to_pulled()) {
                    break;
                }
            }
            if b.done() {
                break;
            }
        }
        b.finish()
    }

    pub fn push_as(
        &mut self,
        u: UserId,
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
        self.run_loads.clear();
        let mut push = Push::new(u, input, self.limits);
        let mut steps = 0;
        loop {
            let mut plan = self.run_push(u, push)?;
            let Some(again) = plan.again.take() else {
                self.steps = steps;
                let page = self.page(plan.page.clone());
                return Ok(plan.respond(page));
            };
            push = Push::resume(u, again);
            assert!(plan.acks.is_empty(), "a step answers nothing");
            assert!(steps < 1000, "steps make progress");
            steps += 1;
            // (The hook's own pushes run without it.)
            if let Some(mut hook) = self.between_steps.take() {
                hook(self);
                self.between_steps = Some(hook);
            }
        }
    }

    /// One transaction of a push: load what it asks, write its plan.
    fn run_push(&mut self, u: UserId, mut push: Push) -> Result<crate::Plan, EngineError> {
        self.run_loads.push(0);
        while let Some(need) = push.need() {
            self.needs.push(need.clone());
            let loaded = self.load(u, &need);
            push.feed(loaded)?;
        }
        let plan = push.finish()?;
        for (scope, head) in &plan.heads {
            assert!(*head > self.scopes[scope].0, "counters only grow");
        }
        for w in &plan.upserts {
            assert!(
                w.version > self.scopes[&w.scope].0,
                "new versions are above the old head"
            );
            self.rows.insert((w.scope, w.id), w.clone());
        }
        for l in &plan.logs {
            assert!(
                self.log
                    .insert((u, l.operation_id.clone()), l.ack.clone())
                    .is_none(),
                "an operation id is logged once"
            );
        }
        for (scope, head) in &plan.heads {
            self.scopes.get_mut(scope).unwrap().0 = *head;
        }
        Ok(plan)
    }

    pub fn push_with(
        &mut self,
        device: &str,
        cursor: CursorStart,
        changes: Vec<ChangeInput>,
        limit: usize,
        max_page_bytes: usize,
    ) -> Result<SyncOutput, EngineError> {
        self.push_as(alice(), device, cursor, changes, limit, max_page_bytes)
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

    pub fn pull_as(
        &self,
        u: UserId,
        cursor: CursorStart,
        limit: usize,
        max_bytes: usize,
    ) -> SyncOutput {
        let view = self.view(u);
        let first = self.first_since(u, page::needs_first_since(&cursor));
        let plan = page::plan(&cursor, &view, &first, limit, max_bytes).expect("pull");
        SyncOutput::pulled(self.page(plan.page), plan.removed_spaces)
    }

    pub fn pull(&self, cursor: CursorStart, limit: usize, max_bytes: usize) -> SyncOutput {
        self.pull_as(alice(), cursor, limit, max_bytes)
    }

    pub fn has(&self, n: u128) -> bool {
        let id = super::id(n);
        self.rows.values().any(|r| r.id == id)
    }

    pub fn record(&self, n: u128) -> &RecordWrite {
        let id = super::id(n);
        self.rows
            .values()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("no record {n}"))
    }

    pub fn field(&self, n: u128, name: &str) -> serde_json::Value {
        let data: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&self.record(n).data).unwrap();
        data.get(name).cloned().unwrap_or(serde_json::Value::Null)
    }
}

pub fn ids(records: &[crate::PulledRecord]) -> Vec<RecordId> {
    records.iter().map(|r| r.id).collect()
}
