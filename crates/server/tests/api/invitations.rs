//! Sharing by invitation over HTTP: nothing of a space reaches anyone who
//! has not accepted, the owner's answer is the same whatever the email,
//! a declined and blocked space stays away, invitations are rate limited,
//! and every invitation the caller may not answer is the same 404.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use tidesync_client::protocol::{RecordId, Role};
use tidesync_client::Client;
use tidesync_testkit::*;

backend_tests!(
    nothing_of_the_space_reaches_the_invitee_before_they_accept,
    the_answer_is_the_same_for_an_account_no_account_and_a_blocked_invitee,
    a_declined_and_blocked_space_stays_away,
    invitations_are_rate_limited_per_inviter_and_per_space,
    invitations_the_caller_may_not_answer_are_all_the_same_404,
    coming_back_after_leaving_needs_a_new_acceptance,
    the_owner_lists_and_revokes_and_no_one_else_can,
    the_invitees_long_poll_wakes_when_an_invitation_arrives,
);

fn raw(c: &Client) -> &str {
    c.token().unwrap()
}

/// Alice's space "FREE GIFT" with an item; returns its id.
async fn seed(app: &TestApp, alice: &Client) -> String {
    let s = new_id();
    app.sync(
        raw(alice),
        "alice-laptop",
        Value::Null,
        vec![
            change(
                &format!("s-{s}"),
                &s,
                "space",
                "create",
                json!({"name": "FREE GIFT -> http://example.com"}),
                &at(0),
                "alice-laptop",
            ),
            change(
                &format!("i-{s}"),
                &new_id(),
                "item",
                "create",
                json!({"title": "Click me", "spaceId": s}),
                &at(1),
                "alice-laptop",
            ),
        ],
    )
    .await;
    s
}

fn rid(s: &str) -> RecordId {
    s.parse().unwrap()
}

async fn invite(app: &TestApp, owner: &Client, space: &str, email: &str) -> Res {
    app.post(
        &format!("/api/spaces/{space}/members"),
        Some(raw(owner)),
        json!({"email": email, "role": "editor"}),
    )
    .await
}

async fn answer(app: &TestApp, who: &Client, id: &str, what: &str, body: Option<Value>) -> Res {
    app.request(
        Method::POST,
        &format!("/api/invitations/{id}/{what}"),
        Some(raw(who)),
        body,
    )
    .await
}

/// Every record id a pull from `cursor` to the end brings, and the cursor.
async fn pulled(c: &Client, cursor: Option<&str>) -> (Vec<String>, String) {
    let all = c.pull_all("phone", cursor, None).await.expect("pull");
    let ids = all
        .updates
        .iter()
        .map(|(_, r)| serde_json::from_str::<Value>(r.get()).unwrap()["id"].to_string())
        .collect();
    (ids, all.sync_timestamp)
}

async fn nothing_of_the_space_reaches_the_invitee_before_they_accept(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let (_, bob_cursor) = pulled(&bob, None).await;
    let mut stream = bob.stream("bob-phone").open().await.unwrap();
    let s = seed(&app, &alice).await;
    let res = invite(&app, &alice, &s, "bob@example.com").await;
    assert_eq!(res.status, 202, "{}", res.body);
    let id = res.body["data"]["invitation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Bob's stream learns of it (a poke without data) ...
    tokio::time::timeout(Duration::from_secs(10), stream.next_event())
        .await
        .expect("Bob's stream hears of the invitation")
        .expect("an event")
        .unwrap();
    // ... and nothing of the space reaches him: pull, export, members.
    assert_eq!(
        pulled(&bob, Some(&bob_cursor)).await.0,
        Vec::<String>::new()
    );
    assert_eq!(pulled(&bob, None).await.0, Vec::<String>::new());
    let export = app.get("/api/auth/me/export", Some(raw(&bob))).await;
    assert_eq!(export.status, 200);
    assert!(!export.body.to_string().contains(&s), "{}", export.body);
    app.get(&format!("/api/spaces/{s}/members"), Some(raw(&bob)))
        .await
        .assert_error(404, "not_found");
    let members = alice.members(rid(&s)).await.unwrap();
    assert_eq!(members.len(), 1, "not shared yet");
    // What he sees of it: what he would accept, nothing else.
    let list = app.get("/api/invitations", Some(raw(&bob))).await;
    assert_eq!(list.status, 200);
    let inv = &list.body["data"]["invitations"][0];
    let mut keys: Vec<&str> = inv
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "createdAt",
            "expiresAt",
            "id",
            "inviter",
            "role",
            "spaceId",
            "spaceName"
        ]
    );
    assert_eq!(inv["spaceName"], json!("FREE GIFT -> http://example.com"));
    assert_eq!(
        inv["inviter"],
        json!({"name": "Test User", "email": "alice@example.com"})
    );
    // Accepted: the space moves in at his next pull, from his old cursor.
    let res = answer(&app, &bob, &id, "accept", None).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.body["data"]["spaceId"], json!(s));
    assert_eq!(res.body["data"]["role"], json!("editor"));
    assert_eq!(res.body["data"]["members"].as_array().unwrap().len(), 2);
    let (ids, _) = pulled(&bob, Some(&bob_cursor)).await;
    assert_eq!(ids.len(), 2, "the space and its item: {ids:?}");
    assert!(ids.contains(&json!(s).to_string()));
    let list = app.get("/api/invitations", Some(raw(&bob))).await;
    assert_eq!(list.body["data"]["invitations"], json!([]));
    app.stop().await;
}

/// The owner's answer, with the values that differ by nature (id, email,
/// times) blanked.
fn shape(res: &Res) -> (u16, Value) {
    let mut body = res.body.clone();
    for k in ["id", "email", "createdAt", "expiresAt"] {
        body["data"]["invitation"][k] = json!("…");
    }
    (res.status.as_u16(), body)
}

async fn the_answer_is_the_same_for_an_account_no_account_and_a_blocked_invitee(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let alice = app.user("alice@example.com").await;
    let carol = app.user("carol@example.com").await;
    app.user("bob@example.com").await;
    let s = seed(&app, &alice).await;
    let first = invite(&app, &alice, &s, "carol@example.com").await;
    let id = first.body["data"]["invitation"]["id"].as_str().unwrap();
    let res = answer(&app, &carol, id, "decline", Some(json!({"block": true}))).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.body["data"]["blocked"], json!(true));
    let answers: Vec<Res> = futures_join(vec![
        invite(&app, &alice, &s, "bob@example.com"),
        invite(&app, &alice, &s, "nobody@example.com"),
        invite(&app, &alice, &s, "carol@example.com"),
    ])
    .await;
    let expected = (
        202,
        json!({"success": true, "data": {"invitation": {
            "id": "…", "spaceId": s, "email": "…", "role": "editor", "status": "pending",
            "createdAt": "…", "expiresAt": "…"}}}),
    );
    for res in &answers {
        assert_eq!(shape(res), expected, "{}", res.body);
        let text = res.body.to_string();
        assert!(
            !text.contains("Test User") && !text.contains("userId"),
            "{text}"
        );
    }
    app.stop().await;
}

async fn futures_join(calls: Vec<impl std::future::Future<Output = Res>>) -> Vec<Res> {
    let mut out = vec![];
    for c in calls {
        out.push(c.await);
    }
    out
}

async fn a_declined_and_blocked_space_stays_away(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let s = seed(&app, &alice).await;
    let inv = alice
        .invite(rid(&s), "bob@example.com", Role::Editor)
        .await
        .unwrap();
    // Declined without a block: the next invitation shows.
    let res = answer(&app, &bob, &inv.id.to_string(), "decline", None).await;
    assert_eq!(
        res.status, 200,
        "no body is a decline without a block: {}",
        res.body
    );
    assert_eq!(res.body["data"]["blocked"], json!(false));
    assert_eq!(res.body["data"]["status"], json!("declined"));
    let again = alice
        .invite(rid(&s), "bob@example.com", Role::Viewer)
        .await
        .unwrap();
    assert_ne!(again.id, inv.id);
    assert_eq!(bob.invitations().await.unwrap().len(), 1);
    // Declined and blocked: later invitations stay stored, pending to the
    // owner, and never reach Bob.
    let d = bob.decline_invitation(again.id, true).await.unwrap();
    assert!(d.blocked);
    let hidden = alice
        .invite(rid(&s), "bob@example.com", Role::Editor)
        .await
        .unwrap();
    assert!(bob.invitations().await.unwrap().is_empty());
    let pending = alice.space_invitations(rid(&s)).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].id, hidden.id);
    answer(&app, &bob, &hidden.id.to_string(), "accept", None)
        .await
        .assert_error(404, "not_found");
    assert_eq!(pulled(&bob, None).await.0, Vec::<String>::new());
    app.stop().await;
}

async fn invitations_are_rate_limited_per_inviter_and_per_space(db: Db) {
    let tdb = TestDb::new(db).await;
    let mut args = test_args(&tdb);
    args.invitations_per_hour = 5;
    args.pending_invitations_per_space = 3;
    let app = spawn_with(args).await;
    let alice = app.user("alice@example.com").await;
    let (a, b) = (seed(&app, &alice).await, seed(&app, &alice).await);
    for n in 0..3 {
        let res = invite(&app, &alice, &a, &format!("a{n}@example.com")).await;
        assert_eq!(res.status, 202, "{}", res.body);
    }
    // Three pending in the space: the fourth waits for one to expire.
    let res = invite(&app, &alice, &a, "a3@example.com").await;
    res.assert_error(429, "rate_limited");
    let wait: u64 = res.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait > 13 * 24 * 3600, "until the first expires: {wait}");
    // Refreshing one adds nothing; another space has room, up to five an hour.
    assert_eq!(invite(&app, &alice, &a, "a0@example.com").await.status, 202);
    assert_eq!(invite(&app, &alice, &b, "b0@example.com").await.status, 202);
    assert_eq!(invite(&app, &alice, &b, "b1@example.com").await.status, 202);
    let res = invite(&app, &alice, &b, "b2@example.com").await;
    res.assert_error(429, "rate_limited");
    let wait: u64 = res.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((3000..=3600).contains(&wait), "within the hour: {wait}");
    // The limit is the inviter's: Bob invites freely.
    let bob = app.user("bob@example.com").await;
    let c = seed(&app, &bob).await;
    assert_eq!(invite(&app, &bob, &c, "a0@example.com").await.status, 202);
    app.stop().await;
}

/// Ages every invitation past its expiry, in the database itself.
async fn expire_all(tdb: &TestDb, db: Db) {
    let sql = "UPDATE invitations SET expires_at = 1";
    match db {
        Db::Sqlite => {
            let file = tidesync_store::sqlite_file(&tdb.url).unwrap();
            rusqlite::Connection::open(file)
                .unwrap()
                .execute(sql, [])
                .unwrap();
        }
        Db::Postgres => {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&tdb.url).await.unwrap();
            sqlx::query(sql).execute(&mut c).await.unwrap();
        }
    }
}

async fn invitations_the_caller_may_not_answer_are_all_the_same_404(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let carol = app.user("carol@example.com").await;
    let s = seed(&app, &alice).await;
    let to_bob = alice
        .invite(rid(&s), "bob@example.com", Role::Viewer)
        .await
        .unwrap();
    let to_bob = to_bob.id.to_string();
    let mut bodies = vec![];
    for (who, id) in [(&carol, to_bob.as_str()), (&bob, &new_id())] {
        for what in ["accept", "decline"] {
            let res = answer(&app, who, id, what, None).await;
            res.assert_error(404, "not_found");
            bodies.push(res.body);
        }
    }
    answer(&app, &bob, "not-a-uuid", "accept", None)
        .await
        .assert_error(400, "validation_failed");
    app.request(
        Method::POST,
        &format!("/api/invitations/{to_bob}/accept"),
        None,
        None,
    )
    .await
    .assert_error(401, "unauthorized");
    // Expired: gone from the list, and the same 404.
    expire_all(&tdb, db).await;
    assert!(bob.invitations().await.unwrap().is_empty());
    let res = answer(&app, &bob, &to_bob, "accept", None).await;
    res.assert_error(404, "not_found");
    bodies.push(res.body);
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
    assert_eq!(pulled(&bob, None).await.0, Vec::<String>::new());
    // A revoked one, and one whose space was deleted: the same.
    let again = alice
        .invite(rid(&s), "bob@example.com", Role::Viewer)
        .await
        .unwrap();
    alice.revoke_invitation(rid(&s), again.id).await.unwrap();
    answer(&app, &bob, &again.id.to_string(), "accept", None)
        .await
        .assert_error(404, "not_found");
    let last = alice
        .invite(rid(&s), "bob@example.com", Role::Viewer)
        .await
        .unwrap();
    app.sync(
        raw(&alice),
        "alice-laptop",
        Value::Null,
        vec![change(
            "del",
            &s,
            "space",
            "delete",
            Value::Null,
            &at(5),
            "alice-laptop",
        )],
    )
    .await;
    assert!(bob.invitations().await.unwrap().is_empty());
    answer(&app, &bob, &last.id.to_string(), "accept", None)
        .await
        .assert_error(404, "not_found");
    app.stop().await;
}

async fn coming_back_after_leaving_needs_a_new_acceptance(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let s = seed(&app, &alice).await;
    share(&alice, &bob, rid(&s), Role::Editor).await.unwrap();
    let (ids, cursor) = pulled(&bob, None).await;
    assert_eq!(ids.len(), 2);
    let bob_id = bob.me().await.unwrap().id;
    bob.remove_member(rid(&s), bob_id).await.unwrap();
    // Invited again: the answer is an invitation, not a membership.
    let res = invite(&app, &alice, &s, "bob@example.com").await;
    assert_eq!(res.status, 202, "{}", res.body);
    let page = bob.pull("phone", Some(&cursor), None).await.unwrap();
    assert_eq!(page.removed_spaces, vec![rid(&s)], "he left: the removal");
    let (ids, cursor) = pulled(&bob, Some(&page.sync_timestamp)).await;
    assert!(ids.is_empty(), "and nothing until he accepts: {ids:?}");
    app.get(&format!("/api/spaces/{s}/members"), Some(raw(&bob)))
        .await
        .assert_error(404, "not_found");
    let id = bob.invitations().await.unwrap()[0].id;
    bob.accept_invitation(id).await.unwrap();
    let (ids, _) = pulled(&bob, Some(&cursor)).await;
    assert_eq!(ids.len(), 2, "moved in again, whole");
    app.stop().await;
}

async fn the_owner_lists_and_revokes_and_no_one_else_can(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let carol = app.user("carol@example.com").await;
    let s = seed(&app, &alice).await;
    share(&alice, &bob, rid(&s), Role::Editor).await.unwrap();
    let inv = alice
        .invite(rid(&s), "Dave@Example.com ", Role::Viewer)
        .await
        .unwrap();
    assert_eq!(inv.email, "dave@example.com");
    let list = format!("/api/spaces/{s}/invitations");
    let one = format!("{list}/{}", inv.id);
    let res = app.get(&list, Some(raw(&alice))).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.body["data"]["invitations"][0]["id"], json!(inv.id));
    app.get(&list, Some(raw(&bob)))
        .await
        .assert_error(403, "forbidden");
    app.get(&list, Some(raw(&carol)))
        .await
        .assert_error(404, "not_found");
    for (who, status, code) in [(&bob, 403, "forbidden"), (&carol, 404, "not_found")] {
        app.request(Method::DELETE, &one, Some(raw(who)), None)
            .await
            .assert_error(status, code);
        invite(&app, who, &s, "eve@example.com")
            .await
            .assert_error(status, code);
    }
    invite(&app, &alice, &s, "alice@example.com")
        .await
        .assert_error(400, "validation_failed");
    invite(&app, &alice, &s, "bob@example.com")
        .await
        .assert_error(409, "conflict");
    let res = app
        .request(Method::DELETE, &one, Some(raw(&alice)), None)
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.body["data"]["invitation"]["status"], json!("revoked"));
    app.request(Method::DELETE, &one, Some(raw(&alice)), None)
        .await
        .assert_error(404, "not_found");
    assert!(alice.space_invitations(rid(&s)).await.unwrap().is_empty());
    app.stop().await;
}

async fn the_invitees_long_poll_wakes_when_an_invitation_arrives(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let s = seed(&app, &alice).await;
    let (_, cursor) = pulled(&bob, None).await;
    let (base, token) = (app.base.clone(), raw(&bob).to_owned());
    let waiting = tokio::spawn(async move {
        let start = Instant::now();
        let res = reqwest::Client::new()
            .post(format!("{base}/api/sync"))
            .bearer_auth(token)
            .json(&json!({"deviceId": "bob-phone", "lastSyncTimestamp": cursor, "waitSeconds": 20}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        (start.elapsed(), res.json::<Value>().await.unwrap())
    });
    // Invited (again, refreshing it, should the poll not be waiting yet).
    let mut waiting = waiting;
    let (took, body) = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            invite(&app, &alice, &s, "bob@example.com").await.status,
            202
        );
        if let Ok(done) = tokio::time::timeout(Duration::from_secs(2), &mut waiting).await {
            break done.unwrap();
        }
    };
    assert!(
        took < Duration::from_secs(15),
        "woken by the invitation: {took:?}"
    );
    for kind in ["spaces", "categories", "items"] {
        assert_eq!(body["data"]["serverUpdates"][kind], json!([]), "{body}");
    }
    app.stop().await;
}
