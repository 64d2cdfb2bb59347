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

/// As if `order` were a reference: what a tombstone keeps.
const KEEP: Keep<'static> = &|k| k == "order";

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
        KEEP,
    )
    .unwrap()
    .state;
    let s = apply(
        Some(&s),
        OpKind::Update,
        &fields(json!({"title":"b"})),
        &ver(3, "A", "o2"),
        KEEP,
    )
    .unwrap()
    .state;
    let out = apply(
        Some(&s),
        OpKind::Update,
        &fields(json!({"notes":"m"})),
        &ver(2, "B", "o3"),
        KEEP,
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
        KEEP,
    )
    .unwrap()
    .state;
    let out = apply(
        Some(&s),
        OpKind::Update,
        &fields(json!({"title":"old"})),
        &ver(4, "B", "o2"),
        KEEP,
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
        KEEP,
    )
    .unwrap()
    .state;
    let out = apply(
        Some(&s),
        OpKind::Update,
        &fields(json!({"title":"b"})),
        &ver(5, "B", "o0"),
        KEEP,
    )
    .unwrap();
    assert_eq!(out.state.fields["title"], json!("b"));
    let out2 = apply(
        Some(&out.state),
        OpKind::Update,
        &fields(json!({"title":"c"})),
        &ver(5, "A", "o9"),
        KEEP,
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
        KEEP,
    )
    .unwrap()
    .state;
    let d = apply(
        Some(&s),
        OpKind::Delete,
        &BTreeMap::new(),
        &ver(2, "A", "o2"),
        KEEP,
    )
    .unwrap();
    assert!(d.changed && !d.already_deleted);
    let u = apply(
        Some(&d.state),
        OpKind::Update,
        &fields(json!({"title":"z"})),
        &ver(9, "B", "o3"),
        KEEP,
    )
    .unwrap();
    assert!(u.conflict);
    assert_eq!(u.state.deleted_at(), Some(2));
    let again = apply(
        Some(&u.state),
        OpKind::Delete,
        &BTreeMap::new(),
        &ver(7, "C", "o4"),
        KEEP,
    )
    .unwrap();
    assert!(again.already_deleted && !again.changed);
}

#[test]
fn a_tombstone_keeps_only_what_places_it() {
    let s = apply(
        None,
        OpKind::Create,
        &fields(json!({"title":"surprise party","notes":"for C","order":1})),
        &ver(1, "A", "o1"),
        KEEP,
    )
    .unwrap()
    .state;
    let d = delete(&s, &ver(2, "A", "o2"), KEEP);
    assert!(d.changed);
    assert_eq!(d.state.fields, fields(json!({"order":1})));
    assert_eq!(d.state.clocks.keys().collect::<Vec<_>>(), ["order"]);
    // A later write to the tombstone stores no content again; a kept field
    // still merges, so the order of delivery does not matter.
    let u = apply(
        Some(&d.state),
        OpKind::Update,
        &fields(json!({"title":"back","order":2})),
        &ver(3, "B", "o3"),
        KEEP,
    )
    .unwrap();
    assert!(u.conflict && u.changed);
    assert_eq!(u.state.fields, fields(json!({"order":2})));
    // A tombstone stored with its content (before deletes erased it) loses
    // it at its next write.
    let mut legacy = s.clone();
    legacy.deleted = Some(ver(2, "A", "o2"));
    let again = delete(&legacy, &ver(5, "C", "o4"), KEEP);
    assert!(again.changed && again.already_deleted);
    assert_eq!(again.state.fields, fields(json!({"order":1})));
    assert_eq!(again.state.deleted, Some(ver(2, "A", "o2")));
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
        KEEP,
    )
    .unwrap()
    .state;
    let s = apply(
        Some(&s),
        OpKind::Update,
        &fields(json!({"notes":"m"})),
        &ver(2, "B", "o2"),
        KEEP,
    )
    .unwrap()
    .state;
    let s = delete(&s, &ver(3, "C", "o3"), KEEP).state;
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
        if let Ok(out) = apply(state.as_ref(), op.kind, &op.fields, &op.v, KEEP) {
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
            if let Ok(once) = apply(Some(&state), op.kind, &op.fields, &op.v, KEEP) {
                let twice = apply(Some(&once.state), op.kind, &op.fields, &op.v, KEEP).unwrap();
                prop_assert_eq!(&twice.state, &once.state);
                prop_assert!(!twice.changed);
            }
        }
    }
}
