//! The merge rules: the same operations applied in two delivery orders end
//! in the same record state, and a state survives its stored encoding.
//!
//! Mirrors the server's loop for one record: the first operation is a create
//! (a device can only update or delete what it has), operation ids already
//! applied are skipped, and operations that fail are not applied.

#![no_main]

use std::collections::{BTreeMap, HashSet};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tidesync_protocol::merge::{self, OpKind, RecordState, Version};

const FIELDS: [&str; 3] = ["title", "notes", "order"];
const DEVICES: [&str; 3] = ["A", "B", "C"];

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Kind {
    Create,
    Update,
    Delete,
}

#[derive(Arbitrary, Debug)]
struct RawOp {
    kind: Kind,
    /// Up to three (field index, value) writes.
    writes: Vec<(u8, i8)>,
    ts: u8,
    device: u8,
}

#[derive(Arbitrary, Debug)]
struct Input {
    ops: Vec<RawOp>,
    /// Indexes of operations delivered again (duplicates of the same id).
    dups: Vec<u8>,
}

#[derive(Clone, Debug)]
struct Op {
    kind: OpKind,
    fields: BTreeMap<String, Value>,
    v: Version,
}

fn build(i: usize, raw: &RawOp) -> Op {
    let kind = match raw.kind {
        Kind::Create => OpKind::Create,
        Kind::Update => OpKind::Update,
        Kind::Delete => OpKind::Delete,
    };
    let mut fields = BTreeMap::new();
    // Filled for every kind: the first op may become a create, and a delete
    // ignores its fields anyway.
    for (f, val) in raw.writes.iter().take(3) {
        let name = FIELDS[*f as usize % FIELDS.len()];
        fields.insert(name.to_owned(), Value::from(*val % 5));
    }
    Op {
        kind,
        fields,
        v: Version {
            ts: i64::from(raw.ts % 8),
            device: DEVICES[raw.device as usize % DEVICES.len()].to_owned(),
            op: format!("op{i}"),
        },
    }
}

/// The server's loop for one record.
fn run(ops: &[&Op]) -> Option<RecordState> {
    let mut seen = HashSet::new();
    let mut state: Option<RecordState> = None;
    for op in ops {
        if !seen.insert(op.v.op.clone()) {
            continue;
        }
        if let Ok(out) = merge::apply(state.as_ref(), op.kind, &op.fields, &op.v) {
            state = Some(out.state);
        }
    }
    state
}

fn check_round_trip(state: &RecordState) {
    let fields = serde_json::to_string(&state.fields).expect("fields serialize");
    let clocks = merge::encode_clocks(state);
    let decoded = merge::decode_state(&fields, &clocks);
    assert_eq!(
        decoded.as_ref(),
        Ok(state),
        "stored form {fields} / {clocks} does not decode to the state"
    );
}

fuzz_target!(|input: Input| {
    let mut ops: Vec<Op> = input
        .ops
        .iter()
        .take(8)
        .enumerate()
        .map(|(i, raw)| build(i, raw))
        .collect();
    if ops.is_empty() {
        return;
    }
    ops[0].kind = OpKind::Create;
    let dups: Vec<&Op> = input
        .dups
        .iter()
        .take(6)
        .map(|d| &ops[*d as usize % ops.len()])
        .collect();

    // Given order, then the duplicates.
    let forward: Vec<&Op> = ops.iter().chain(dups.iter().copied()).collect();
    // The create first, then the rest (duplicates included) reversed.
    let mut reversed: Vec<&Op> = vec![&ops[0]];
    reversed.extend(ops[1..].iter().chain(dups.iter().copied()).rev());

    let a = run(&forward);
    let b = run(&reversed);
    assert_eq!(
        a, b,
        "delivery order changed the result: {ops:?} dups {dups:?}"
    );

    let state = a.expect("a create was applied");
    check_round_trip(&state);

    // Intermediate states round-trip too.
    let mut state: Option<RecordState> = None;
    for op in &ops {
        if let Ok(out) = merge::apply(state.as_ref(), op.kind, &op.fields, &op.v) {
            check_round_trip(&out.state);
            state = Some(out.state);
        }
    }
});
