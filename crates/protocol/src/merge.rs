//! The merge rules, as pure functions.
//!
//! Per-field last-writer-wins: every field remembers the [`Version`] of the
//! write that set it, and a write changes a field only if its version is
//! newer. Deletes win: once a record has a delete it stays deleted, and it
//! keeps only the fields that place it (its parents' ids, see [`Keep`]):
//! the user's words are erased by the delete, so a tombstone shows nobody,
//! a member who joins later included, what was deleted. Writes that reach a
//! tombstone change only those fields. The rules are commutative and
//! idempotent, so every order of delivery of the same operations ends in the
//! same state (see the property tests below).

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

/// Which fields a deleted record keeps: true for the references that say
/// where it hangs (a device needs them to apply the delete and its
/// cascade); everything else goes with the delete.
pub type Keep<'a> = &'a dyn Fn(&str) -> bool;

/// Applies one operation to a record (absent when it does not exist yet).
pub fn apply(
    existing: Option<&RecordState>,
    op: OpKind,
    fields: &BTreeMap<String, Value>,
    v: &Version,
    keep: Keep<'_>,
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
            let deleted = state.deleted.is_some();
            if deleted {
                // A tombstone stored before deletes erased content.
                changed |= strip(&mut state, keep);
            }
            for (k, val) in fields {
                if deleted && !keep(k) {
                    // Erased by the delete: nothing of it is stored again.
                    continue;
                }
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
        (Some(old), OpKind::Delete) => Ok(delete(old, v, keep)),
    }
}

/// Marks a record deleted at `v` (the earliest delete is kept) and erases
/// every field `keep` does not keep, with its clock.
pub fn delete(old: &RecordState, v: &Version, keep: Keep<'_>) -> Outcome {
    let mut state = old.clone();
    let already_deleted = old.deleted.is_some();
    let mut changed = match &old.deleted {
        Some(d) if d <= v => false,
        _ => {
            state.deleted = Some(v.clone());
            true
        }
    };
    changed |= strip(&mut state, keep);
    Outcome {
        state,
        changed,
        conflict: false,
        already_deleted,
    }
}

/// Drops the fields (and their clocks) a tombstone does not keep; true when
/// there were any.
fn strip(state: &mut RecordState, keep: Keep<'_>) -> bool {
    let before = state.fields.len() + state.clocks.len();
    state.fields.retain(|k, _| keep(k));
    state.clocks.retain(|k, _| keep(k));
    state.fields.len() + state.clocks.len() != before
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
mod tests;
