use super::*;
use tidesync_protocol::entity::EntityType;
use tidesync_protocol::{Role, UserId};

use crate::view::ScopeView;

const P: ScopeId = ScopeId::new(1);
const S: ScopeId = ScopeId::new(5);

fn row(version: i64, data_len: usize) -> PulledRecord {
    PulledRecord {
        id: RecordId::from_uuid(tidesync_protocol::uuid::Uuid::from_u128(version as u128)),
        entity: EntityType::Item,
        version,
        data: "x".repeat(data_len),
        created_at: 0,
        updated_at: 0,
        deleted_at: None,
        device_id: String::new(),
        created_by: UserId::from_uuid(tidesync_protocol::uuid::Uuid::nil()),
    }
}

fn one(limit: usize, max_bytes: usize) -> PageQuery {
    PageQuery {
        personal: P,
        ranges: vec![ScopeRange {
            scope: P,
            after: 0,
            upto: 100,
            live_only: false,
            listed: true,
            needs_after: Some(0),
            floor: 0,
        }],
        limit,
        max_bytes,
    }
}

#[test]
fn a_page_stops_at_the_limit_and_points_at_its_last_record() {
    let mut b = one(3, usize::MAX).builder();
    assert_eq!(b.begin(0), 4);
    assert!(b.offer(row(4, 10)));
    assert!(b.offer(row(7, 10)));
    assert!(b.offer(row(9, 10)));
    assert!(!b.offer(row(12, 10)));
    let p = b.finish();
    assert_eq!(p.records.len(), 3);
    assert!(p.has_more);
    assert_eq!(p.positions, Positions::personal(9));
}

#[test]
fn a_page_that_ends_early_points_at_the_top() {
    let mut b = one(3, usize::MAX).builder();
    b.begin(0);
    assert!(b.offer(row(4, 10)));
    let p = b.finish();
    assert!(!p.has_more);
    assert_eq!(p.positions, Positions::personal(100));
}

#[test]
fn a_page_is_bounded_by_bytes_but_always_takes_one_record() {
    let big = 10_000;
    let mut b = one(1000, big + 300).builder();
    b.begin(0);
    assert!(b.offer(row(1, big)));
    assert!(
        !b.offer(row(2, 10)),
        "the second record would pass the budget"
    );
    let p = b.finish();
    assert_eq!((p.records.len(), p.has_more), (1, true));
    assert_eq!(p.positions.personal, 1);
    let mut b = one(1000, 10).builder();
    b.begin(0);
    assert!(b.offer(row(5, big)), "one record, however large");
    assert!(!b.offer(row(6, 1)));
}

fn view(removed: bool) -> View {
    let mut v = View::personal(UserId::random(), P, 9);
    v.scopes.push(ScopeView {
        id: S,
        role: if removed { Role::Removed } else { Role::Editor },
        space: Some(RecordId::from_uuid(
            tidesync_protocol::uuid::Uuid::from_u128(77),
        )),
        head: 4,
        collected: 0,
        // The user created the space: moving in, it needs tombstones too.
        founder: true,
    });
    v
}

#[test]
fn pages_run_across_scopes_and_a_scope_moves_in_whole() {
    // The cursor knows only the personal scope: the shared one moves in.
    let plan = super::plan(
        &CursorStart::personal(9),
        &view(false),
        &FirstSince::new(),
        3,
        usize::MAX,
    )
    .unwrap();
    let r = &plan.page.ranges;
    assert_eq!((r[0].scope, r[0].after, r[0].listed), (P, 9, true));
    assert_eq!(
        (r[1].scope, r[1].after, r[1].listed, r[1].live_only),
        (S, 0, false, false)
    );
    // Any other member moves in with live records only: nothing of what
    // was deleted before they joined.
    let mut member = view(false);
    member.scopes[1].founder = false;
    let joined = super::plan(
        &CursorStart::personal(9),
        &member,
        &FirstSince::new(),
        3,
        usize::MAX,
    )
    .unwrap();
    let r1 = &joined.page.ranges[1];
    assert_eq!((r1.after, r1.live_only, r1.needs_after), (0, true, None));
    // Two of the shared scope's four rows fit: its position is the second.
    let mut b = plan.page.clone().builder();
    b.begin(0);
    b.begin(1);
    assert!(b.offer(row(1, 1)) && b.offer(row(2, 1)) && b.offer(row(3, 1)));
    assert!(!b.offer(row(4, 1)));
    let p = b.finish();
    // Part-way through the move-in: the floor (the head it began at) says
    // the device needs no tombstone up to 4.
    assert_eq!(p.positions.encode(), "v1.u.9.s5.3f4");
    // Not reached at all: a moving-in scope stays out of the cursor.
    let mut b = super::plan(
        &CursorStart::personal(0),
        &view(false),
        &FirstSince::new(),
        1,
        usize::MAX,
    )
    .unwrap()
    .page
    .builder();
    b.begin(0);
    assert!(b.offer(row(1, 1)));
    assert!(!b.offer(row(2, 1)));
    assert_eq!(b.finish().positions.encode(), "v1.u.1");
}

#[test]
fn a_removed_scope_in_the_cursor_is_dropped_with_a_removal() {
    let mut at = Positions::personal(9);
    at.shared.insert(S, 2);
    let plan = super::plan(
        &CursorStart::At(at.clone()),
        &view(true),
        &FirstSince::new(),
        10,
        100,
    )
    .unwrap();
    assert_eq!(
        plan.page.ranges.len(),
        1,
        "nothing read from the removed scope"
    );
    assert_eq!(plan.removed_spaces.len(), 1);
    let mut b = plan.page.builder();
    b.begin(0);
    assert_eq!(
        b.finish().positions.encode(),
        "v1.u.9",
        "and it leaves the cursor"
    );
    // A scope the user never belonged to is ignored: no oracle.
    let mut other = Positions::personal(9);
    other.shared.insert(ScopeId::new(99), 3);
    let plan = super::plan(
        &CursorStart::At(other),
        &view(false),
        &FirstSince::new(),
        10,
        100,
    )
    .unwrap();
    assert!(plan.removed_spaces.is_empty());
}

#[test]
fn cursors_ahead_of_a_scope_are_refused() {
    let mut at = Positions::personal(9);
    at.shared.insert(S, 5);
    assert_eq!(
        super::plan(
            &CursorStart::At(at),
            &view(false),
            &FirstSince::new(),
            10,
            100
        ),
        Err(EngineError::CursorAhead)
    );
    assert_eq!(
        super::plan(
            &CursorStart::personal(10),
            &view(false),
            &FirstSince::new(),
            10,
            100
        ),
        Err(EngineError::CursorAhead)
    );
}

#[test]
fn a_cursor_behind_the_collected_history_must_resync() {
    let mut v = view(false);
    v.scopes[0].collected = 5;
    let resync = |c: CursorStart| super::plan(&c, &v, &FirstSince::new(), 10, 100);
    assert_eq!(
        resync(CursorStart::personal(4)),
        Err(EngineError::ResyncRequired)
    );
    assert!(
        resync(CursorStart::personal(5)).is_ok(),
        "it saw every collected tombstone"
    );
    assert!(
        resync(CursorStart::Scratch).is_ok(),
        "a from-scratch pull needs no tombstones"
    );
    let mut first = FirstSince::new();
    first.insert(P, 3);
    assert_eq!(
        super::plan(&CursorStart::Since(0), &v, &first, 10, 100),
        Err(EngineError::ResyncRequired),
        "a date before the horizon too"
    );
}

#[test]
fn a_pull_part_way_from_scratch_or_moving_in_is_not_stale() {
    let mut v = view(false);
    v.scopes[0].collected = 5;
    // From scratch: page one stops at 2, below what was collected.
    let plan = super::plan(&CursorStart::Scratch, &v, &FirstSince::new(), 2, usize::MAX).unwrap();
    let mut b = plan.page.builder();
    b.begin(0);
    assert!(b.offer(row(1, 1)) && b.offer(row(2, 1)));
    assert!(!b.offer(row(6, 1)));
    let next = b.finish().positions;
    assert_eq!(next.encode(), "v1.u.2f9");
    let plan = super::plan(
        &CursorStart::At(next.clone()),
        &v,
        &FirstSince::new(),
        2,
        usize::MAX,
    );
    assert!(plan.is_ok(), "the next page of a scratch pull: {plan:?}");
    assert!(!stale(&plan.unwrap().page, &[(P, 9)]));
    // A collection reaching above the floor: deletions the device needs.
    assert!(super::plan(
        &CursorStart::At(next.clone()),
        &{
            let mut v = v.clone();
            v.scopes[0].head = 20;
            v.scopes[0].collected = 10;
            v
        },
        &FirstSince::new(),
        2,
        usize::MAX
    )
    .is_err());
    // A floor above the head was not issued here.
    let mut ahead = next;
    ahead.personal_floor = Some(50);
    assert_eq!(
        super::plan(
            &CursorStart::At(ahead),
            &v,
            &FirstSince::new(),
            2,
            usize::MAX
        ),
        Err(EngineError::CursorAhead)
    );
    // Moving into a scope with collected history: the founder's device may
    // hold its records from before, and cannot learn of deletions
    // collected; another member's holds nothing and needs no tombstone.
    let mut v = view(false);
    v.scopes[1].collected = 1;
    let plan = |v: &View| {
        super::plan(
            &CursorStart::personal(9),
            v,
            &FirstSince::new(),
            2,
            usize::MAX,
        )
    };
    assert_eq!(plan(&v), Err(EngineError::ResyncRequired));
    v.scopes[1].founder = false;
    assert!(plan(&v).is_ok());
}

#[test]
fn a_date_cursor_starts_before_the_first_version_written_since() {
    let mut first = FirstSince::new();
    first.insert(P, 6);
    let plan = super::plan(&CursorStart::Since(5), &view(false), &first, 10, 100).unwrap();
    assert_eq!(plan.page.ranges[0].after, 5);
    assert_eq!(
        plan.page.ranges[1].after, 4,
        "nothing newer in that scope: its head"
    );
    let plan = super::plan(&CursorStart::Scratch, &view(false), &first, 10, 100).unwrap();
    assert!(plan.page.ranges.iter().all(|r| r.live_only && r.after == 0));
}
