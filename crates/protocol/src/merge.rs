//! The merge rules, as pure functions.
//!
//! Per-field last-writer-wins: every field remembers the [`Version`] of the
//! write that set it, and a write changes a field only if its version is
//! newer. Deletes win: once a record has a delete it stays deleted. Both rules
//! are commutative and idempotent, so every order of delivery of the same
//! operations ends in the same state (see the property tests below).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::time::Millis;

/// The version of a write: (timestamp, device, operation), compared in that
/// order, so every tie is decided the same way on every server.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub ts: Millis,
    pub device: String,
    pub op: String,
}

/// A client timestamp further than `max_skew` in the server's future is taken
/// as the server's time, so a device with a wrong clock can't win every later
/// conflict.
pub fn clamp_timestamp(client: Millis, server_now: Millis, max_skew: Millis) -> Millis {
    if client > server_now.saturating_add(max_skew) {
        server_now
    } else {
        client
    }
}

/// A record's fields with the version that last wrote each.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordState {
    pub fields: BTreeMap<String, Value>,
    pub clocks: BTreeMap<String, Version>,
    /// The earliest create: gives `createdAt`.
    pub created: Version,
    /// The earliest delete, if any: gives `deletedAt`.
    pub deleted: Option<Version>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OpKind {
    Create,
    Update,
    Delete,
}

impl OpKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "create" => Some(OpKind::Create),
            "update" => Some(OpKind::Update),
            "delete" => Some(OpKind::Delete),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Create => "create",
            OpKind::Update => "update",
            OpKind::Delete => "delete",
        }
    }
}

/// What applying one operation did.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub state: RecordState,
    /// The stored state differs from before.
    pub changed: bool,
    /// Part of the write did not take effect (an older field version, or the
    /// record is deleted): the device must receive the server's state.
    pub conflict: bool,
    /// A delete of a record that was already deleted.
    pub already_deleted: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeError {
    /// Update or delete of a record that does not exist.
    NotFound,
}

impl RecordState {
    pub fn created_at(&self) -> Millis {
        self.created.ts
    }

    pub fn deleted_at(&self) -> Option<Millis> {
        self.deleted.as_ref().map(|v| v.ts)
    }

    /// The newest version that touched the record: gives `updatedAt` and the
    /// last modifying `deviceId`.
    pub fn last(&self) -> &Version {
        let mut last = &self.created;
        for v in self.clocks.values().chain(self.deleted.iter()) {
            if v > last {
                last = v;
            }
        }
        last
    }
}

/// Applies one operation to a record (absent when it does not exist yet).
pub fn apply(
    existing: Option<&RecordState>,
    op: OpKind,
    fields: &BTreeMap<String, Value>,
    v: &Version,
) -> Result<Outcome, MergeError> {
    match (existing, op) {
        (None, OpKind::Create) => Ok(Outcome {
            state: RecordState {
                clocks: fields.keys().map(|k| (k.clone(), v.clone())).collect(),
                fields: fields.clone(),
                created: v.clone(),
                deleted: None,
            },
            changed: true,
            conflict: false,
            already_deleted: false,
        }),
        (None, _) => Err(MergeError::NotFound),
        (Some(old), OpKind::Create | OpKind::Update) => {
            let mut state = old.clone();
            let mut changed = false;
            let mut lost = false;
            for (k, val) in fields {
                match state.clocks.get(k) {
                    Some(cur) if cur > v => lost = true,
                    // The same version again: this very write, already applied.
                    Some(cur) if cur == v => {}
                    _ => {
                        state.clocks.insert(k.clone(), v.clone());
                        state.fields.insert(k.clone(), val.clone());
                        changed = true;
                    }
                }
            }
            if op == OpKind::Create && *v < state.created {
                state.created = v.clone();
                changed = true;
            }
            let conflict = lost || state.deleted.is_some();
            Ok(Outcome {
                state,
                changed,
                conflict,
                already_deleted: false,
            })
        }
        (Some(old), OpKind::Delete) => Ok(delete(old, v)),
    }
}

/// Marks a record deleted at `v` (the earliest delete is kept).
pub fn delete(old: &RecordState, v: &Version) -> Outcome {
    let mut state = old.clone();
    let already_deleted = old.deleted.is_some();
    let changed = match &old.deleted {
        Some(d) if d <= v => false,
        _ => {
            state.deleted = Some(v.clone());
            true
        }
    };
    Outcome {
        state,
        changed,
        conflict: false,
        already_deleted,
    }
}

/// Compact stored form of the clocks: each distinct version once, and each
/// field, `created` and `deleted` by index. A create stamps every field with
/// one version, so this is usually a single entry.
#[derive(Serialize, Deserialize)]
struct StoredClocks {
    v: Vec<(Millis, String, String)>,
    f: BTreeMap<String, usize>,
    c: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    d: Option<usize>,
}

/// Encodes the clocks (not the field values) of a state as JSON.
pub fn encode_clocks(state: &RecordState) -> String {
    // Few distinct versions per record: a linear scan beats hashing.
    fn index<'a>(v: &'a Version, versions: &mut Vec<&'a Version>) -> usize {
        match versions.iter().position(|x| *x == v) {
            Some(i) => i,
            None => {
                versions.push(v);
                versions.len() - 1
            }
        }
    }
    let mut versions: Vec<&Version> = Vec::new();
    let c = index(&state.created, &mut versions);
    let f = state
        .clocks
        .iter()
        .map(|(k, v)| (k.clone(), index(v, &mut versions)))
        .collect();
    let d = state.deleted.as_ref().map(|v| index(v, &mut versions));
    let stored = StoredClocks {
        v: versions
            .into_iter()
            .map(|v| (v.ts, v.device.clone(), v.op.clone()))
            .collect(),
        f,
        c,
        d,
    };
    serde_json::to_string(&stored).expect("clocks serialize")
}

/// Rebuilds a state from its stored field values and encoded clocks.
pub fn decode_state(fields_json: &str, clocks_json: &str) -> Result<RecordState, String> {
    let fields: BTreeMap<String, Value> =
        serde_json::from_str(fields_json).map_err(|e| format!("record data: {e}"))?;
    let sc: StoredClocks =
        serde_json::from_str(clocks_json).map_err(|e| format!("record clocks: {e}"))?;
    let get = |i: usize| -> Result<Version, String> {
        sc.v.get(i)
            .map(|(ts, d, o)| Version {
                ts: *ts,
                device: d.clone(),
                op: o.clone(),
            })
            .ok_or_else(|| format!("record clocks: bad index {i}"))
    };
    let mut clocks = BTreeMap::new();
    for (k, i) in &sc.f {
        clocks.insert(k.clone(), get(*i)?);
    }
    Ok(RecordState {
        fields,
        clocks,
        created: get(sc.c)?,
        deleted: sc.d.map(get).transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn ver(ts: Millis, device: &str, op: &str) -> Version {
        Version {
            ts,
            device: device.into(),
            op: op.into(),
        }
    }

    fn fields(v: Value) -> BTreeMap<String, Value> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn different_fields_both_survive() {
        let s = apply(
            None,
            OpKind::Create,
            &fields(json!({"title":"a","notes":"n"})),
            &ver(1, "A", "o1"),
        )
        .unwrap()
        .state;
        let s = apply(
            Some(&s),
            OpKind::Update,
            &fields(json!({"title":"b"})),
            &ver(3, "A", "o2"),
        )
        .unwrap()
        .state;
        let out = apply(
            Some(&s),
            OpKind::Update,
            &fields(json!({"notes":"m"})),
            &ver(2, "B", "o3"),
        )
        .unwrap();
        assert!(!out.conflict);
        assert_eq!(out.state.fields["title"], json!("b"));
        assert_eq!(out.state.fields["notes"], json!("m"));
    }

    #[test]
    fn older_write_of_same_field_loses_with_conflict() {
        let s = apply(
            None,
            OpKind::Create,
            &fields(json!({"title":"a"})),
            &ver(5, "A", "o1"),
        )
        .unwrap()
        .state;
        let out = apply(
            Some(&s),
            OpKind::Update,
            &fields(json!({"title":"old"})),
            &ver(4, "B", "o2"),
        )
        .unwrap();
        assert!(out.conflict && !out.changed);
        assert_eq!(out.state.fields["title"], json!("a"));
    }

    #[test]
    fn ties_break_on_device_then_operation() {
        let s = apply(
            None,
            OpKind::Create,
            &fields(json!({"title":"a"})),
            &ver(5, "A", "o1"),
        )
        .unwrap()
        .state;
        let out = apply(
            Some(&s),
            OpKind::Update,
            &fields(json!({"title":"b"})),
            &ver(5, "B", "o0"),
        )
        .unwrap();
        assert_eq!(out.state.fields["title"], json!("b"));
        let out2 = apply(
            Some(&out.state),
            OpKind::Update,
            &fields(json!({"title":"c"})),
            &ver(5, "A", "o9"),
        )
        .unwrap();
        assert!(out2.conflict);
        assert_eq!(out2.state.fields["title"], json!("b"));
    }

    #[test]
    fn deletes_win_and_are_not_revived() {
        let s = apply(
            None,
            OpKind::Create,
            &fields(json!({"title":"a"})),
            &ver(1, "A", "o1"),
        )
        .unwrap()
        .state;
        let d = apply(
            Some(&s),
            OpKind::Delete,
            &BTreeMap::new(),
            &ver(2, "A", "o2"),
        )
        .unwrap();
        assert!(d.changed && !d.already_deleted);
        let u = apply(
            Some(&d.state),
            OpKind::Update,
            &fields(json!({"title":"z"})),
            &ver(9, "B", "o3"),
        )
        .unwrap();
        assert!(u.conflict);
        assert_eq!(u.state.deleted_at(), Some(2));
        let again = apply(
            Some(&u.state),
            OpKind::Delete,
            &BTreeMap::new(),
            &ver(7, "C", "o4"),
        )
        .unwrap();
        assert!(again.already_deleted && !again.changed);
    }

    #[test]
    fn future_timestamps_are_clamped() {
        assert_eq!(clamp_timestamp(1_000 + 301_000, 1_000, 300_000), 1_000);
        assert_eq!(clamp_timestamp(1_000 + 299_000, 1_000, 300_000), 300_000);
        assert_eq!(clamp_timestamp(5, 1_000, 300_000), 5);
    }

    #[test]
    fn clocks_round_trip() {
        let s = apply(
            None,
            OpKind::Create,
            &fields(json!({"title":"a","notes":"n"})),
            &ver(1, "A", "o1"),
        )
        .unwrap()
        .state;
        let s = apply(
            Some(&s),
            OpKind::Update,
            &fields(json!({"notes":"m"})),
            &ver(2, "B", "o2"),
        )
        .unwrap()
        .state;
        let s = delete(&s, &ver(3, "C", "o3")).state;
        let enc = encode_clocks(&s);
        let data = serde_json::to_string(&s.fields).unwrap();
        assert_eq!(decode_state(&data, &enc).unwrap(), s);
        assert!(decode_state(&data, "{}").is_err());
    }

    #[derive(Clone, Debug)]
    struct Op {
        kind: OpKind,
        fields: BTreeMap<String, Value>,
        v: Version,
    }

    fn op_strategy(i: usize) -> impl Strategy<Value = Op> {
        let kind = prop_oneof![
            2 => Just(OpKind::Update),
            1 => Just(OpKind::Create),
            1 => Just(OpKind::Delete),
        ];
        let fields = proptest::collection::btree_map(
            prop_oneof![Just("title"), Just("notes"), Just("order")].prop_map(String::from),
            (0i64..5).prop_map(|n| json!(n)),
            1..3,
        );
        (
            kind,
            fields,
            0i64..6,
            prop_oneof![Just("A"), Just("B"), Just("C")],
        )
            .prop_map(move |(kind, fields, ts, dev)| Op {
                kind,
                fields,
                v: ver(ts, dev, &format!("op{i}")),
            })
    }

    /// The server's loop for one record: skip operation ids already applied
    /// (idempotency), ignore failures (they are remembered, not applied).
    fn run(ops: &[Op]) -> Option<RecordState> {
        let mut seen = std::collections::HashSet::new();
        let mut state: Option<RecordState> = None;
        for op in ops {
            if !seen.insert(op.v.op.clone()) {
                continue;
            }
            if let Ok(out) = apply(state.as_ref(), op.kind, &op.fields, &op.v) {
                state = Some(out.state);
            }
        }
        state
    }

    fn ops_strategy() -> impl Strategy<Value = Vec<Op>> {
        (1usize..8).prop_flat_map(|n| (0..n).map(op_strategy).collect::<Vec<_>>())
    }

    proptest! {
        /// Any delivery order (a create first, as a device can only update
        /// or delete what it has), with any duplicates, ends in one state.
        #[test]
        fn any_order_with_duplicates_converges(
            mut ops in ops_strategy(),
            first in prop_oneof![Just(0usize)],
            shuffle_seed in any::<u64>(),
            dups in proptest::collection::vec(0usize..8, 0..6),
        ) {
            ops[first].kind = OpKind::Create;
            let reference = run(&ops);

            let mut rest: Vec<Op> = ops[1..].to_vec();
            for d in &dups {
                if !ops.is_empty() {
                    rest.push(ops[d % ops.len()].clone());
                }
            }
            // Deterministic shuffle from the seed.
            let mut seed = shuffle_seed | 1;
            for i in (1..rest.len()).rev() {
                seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
                rest.swap(i, (seed as usize) % (i + 1));
            }
            let mut shuffled = vec![ops[0].clone()];
            shuffled.extend(rest);
            prop_assert_eq!(run(&shuffled), reference);
        }

        /// Applying the same operation twice changes nothing the second time.
        #[test]
        fn reapplying_is_a_no_op(ops in ops_strategy()) {
            let mut ops = ops;
            ops[0].kind = OpKind::Create;
            let Some(state) = run(&ops) else { return Ok(()) };
            for op in &ops[1..] {
                if let Ok(once) = apply(Some(&state), op.kind, &op.fields, &op.v) {
                    let twice = apply(Some(&once.state), op.kind, &op.fields, &op.v).unwrap();
                    prop_assert_eq!(&twice.state, &once.state);
                    prop_assert!(!twice.changed);
                }
            }
        }
    }
}
