//! Shared spaces over HTTP (issue 11): the members endpoints, move-in and
//! move-out with writers running, roles in writes, non-members refused
//! everywhere, and pokes reaching every member.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};
use tidesync_client::protocol::{RecordId, Role};
use tidesync_client::Client;
use tidesync_testkit::*;

struct People {
    alice: Client,
    bob: Client,
    carol: Client,
}

async fn people(app: &TestApp) -> People {
    People {
        alice: app.user("alice@example.com").await,
        bob: app.user("bob@example.com").await,
        carol: app.user("carol@example.com").await,
    }
}

fn raw(c: &Client) -> &str {
    c.token().unwrap()
}

/// Alice's space with a category and two items; returns the ids.
async fn seed_space(app: &TestApp, alice: &Client) -> (String, String, Vec<String>) {
    let (s, c) = (new_id(), new_id());
    let items = vec![new_id(), new_id()];
    app.sync(
        raw(alice),
        "alice-laptop",
        Value::Null,
        vec![
            change(
                "s",
                &s,
                "space",
                "create",
                json!({"name": "Movies to watch"}),
                &at(0),
                "alice-laptop",
            ),
            change(
                "c",
                &c,
                "category",
                "create",
                json!({"name": "Sci-fi", "spaceId": s}),
                &at(1),
                "alice-laptop",
            ),
            change(
                "i0",
                &items[0],
                "item",
                "create",
                json!({"title": "Dune", "spaceId": s, "categoryId": c}),
                &at(2),
                "alice-laptop",
            ),
            change(
                "i1",
                &items[1],
                "item",
                "create",
                json!({"title": "Arrival", "categoryId": c}),
                &at(3),
                "alice-laptop",
            ),
        ],
    )
    .await;
    (s, c, items)
}

fn rid(s: &str) -> RecordId {
    s.parse().unwrap()
}

async fn members(c: &Client, space: &str) -> Vec<(String, Role)> {
    c.members(rid(space))
        .await
        .expect("members")
        .into_iter()
        .map(|m| (m.email, m.role))
        .collect()
}

/// The space's records as a device of `c` sees them after pulling to the end
/// from `cursor`, with the removals it was told of.
async fn device_view(
    c: &Client,
    cursor: Option<&str>,
    limit: Option<usize>,
) -> (Everything, Vec<RecordId>) {
    let mut pager = c.pages("phone", cursor, limit);
    let mut by_id = BTreeMap::new();
    let mut removed = vec![];
    while let Some(page) = pager.next_page().await.expect("pull") {
        removed.extend(page.removed_spaces.iter().copied());
        by_id.extend(by_id_of(&page.updates));
    }
    let everything = Everything {
        by_id,
        cursor: pager.cursor().unwrap_or_default().to_owned(),
        pages: pager.pages(),
    };
    (everything, removed)
}

fn by_id_of(u: &tidesync_client::protocol::sync::ServerUpdates) -> BTreeMap<String, Value> {
    by_id(u)
}

async fn members_endpoints_answer_as_documented(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let p = people(&app).await;
    let (s, _, _) = seed_space(&app, &p.alice).await;
    let path = format!("/api/spaces/{s}/members");
    // Unshared: its owner alone.
    assert_eq!(
        members(&p.alice, &s).await,
        vec![("alice@example.com".into(), Role::Owner)]
    );
    // Add: 202 with the invitation; Bob accepts and is a member.
    let res = app
        .post(
            &path,
            Some(raw(&p.alice)),
            json!({"email": "Bob@Example.com", "role": "editor"}),
        )
        .await;
    assert_eq!(res.status, 202, "{}", res.body);
    let invitation = &res.body["data"]["invitation"];
    assert_eq!(invitation["email"], json!("bob@example.com"));
    assert_eq!(invitation["status"], json!("pending"));
    let res = app
        .post(
            &format!(
                "/api/invitations/{}/accept",
                invitation["id"].as_str().unwrap()
            ),
            Some(raw(&p.bob)),
            json!({}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(
        res.body["data"]["members"][1]["email"],
        json!("bob@example.com")
    );
    assert_eq!(res.body["data"]["members"][1]["role"], json!("editor"));
    assert!(res.body["data"]["members"][1]["since"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    // The errors, each with its status and code.
    app.post(
        &path,
        Some(raw(&p.alice)),
        json!({"email": "bob@example.com", "role": "viewer"}),
    )
    .await
    .assert_error(409, "conflict");
    let res = app
        .post(
            &path,
            Some(raw(&p.alice)),
            json!({"email": "nobody@example.com", "role": "viewer"}),
        )
        .await;
    assert_eq!(res.status, 202, "no account, the same answer: {}", res.body);
    app.post(
        &path,
        Some(raw(&p.alice)),
        json!({"email": "carol@example.com", "role": "owner"}),
    )
    .await
    .assert_error(400, "validation_failed");
    app.post(
        &path,
        Some(raw(&p.alice)),
        json!({"email": "carol@example.com", "role": "admin"}),
    )
    .await
    .assert_error(400, "validation_failed");
    app.post(
        &path,
        Some(raw(&p.bob)),
        json!({"email": "carol@example.com", "role": "viewer"}),
    )
    .await
    .assert_error(403, "forbidden");
    // Non-members: 404 for everything, existence hidden.
    for res in [
        app.get(&path, Some(raw(&p.carol))).await,
        app.post(
            &path,
            Some(raw(&p.carol)),
            json!({"email": "bob@example.com", "role": "viewer"}),
        )
        .await,
        app.get(
            &format!("/api/spaces/{}/members", new_id()),
            Some(raw(&p.carol)),
        )
        .await,
    ] {
        res.assert_error(404, "not_found");
    }
    app.get("/api/spaces/not-a-uuid/members", Some(raw(&p.alice)))
        .await
        .assert_error(400, "validation_failed");
    app.get(&path, None).await.assert_error(401, "unauthorized");
    // PATCH, transfer, and leave.
    let bob_id = p.bob.me().await.unwrap().id;
    let alice_id = p.alice.me().await.unwrap().id;
    let res = app
        .request(
            reqwest::Method::PATCH,
            &format!("{path}/{bob_id}"),
            Some(raw(&p.alice)),
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.body["data"]["members"][1]["role"], json!("viewer"));
    app.request(
        reqwest::Method::DELETE,
        &format!("{path}/{alice_id}"),
        Some(raw(&p.alice)),
        None,
    )
    .await
    .assert_error(409, "conflict");
    let res = app
        .post(
            &format!("/api/spaces/{s}/owner"),
            Some(raw(&p.alice)),
            json!({"userId": bob_id}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(
        members(&p.bob, &s).await,
        vec![
            ("bob@example.com".into(), Role::Owner),
            ("alice@example.com".into(), Role::Editor)
        ]
    );
    let res = app
        .request(
            reqwest::Method::DELETE,
            &format!("{path}/{alice_id}"),
            Some(raw(&p.alice)),
            None,
        )
        .await;
    assert_eq!(res.status, 200, "a member leaves: {}", res.body);
    app.get(&path, Some(raw(&p.alice)))
        .await
        .assert_error(404, "not_found");
    app.stop().await;
}

/// Carol is added while Alice and Bob write into the space, then removed
/// while they go on: her device gets the whole space exactly (as Alice's
/// from-scratch view has it), then the removal, then nothing of the space.
async fn move_in_and_move_out_are_exact_with_writers_running(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let p = people(&app).await;
    let (s, c, _) = seed_space(&app, &p.alice).await;
    share(&p.alice, &p.bob, rid(&s), Role::Editor)
        .await
        .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = [(p.alice.clone(), "a"), (p.bob.clone(), "b")]
        .into_iter()
        .map(|(client, who)| {
            let (stop, s, c, base) = (stop.clone(), s.clone(), c.clone(), app.base.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut n: i64 = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 400 {
                    let ch = change(&format!("{who}-{n}"), &new_id(), "item", "create",
                                    json!({"title": format!("{who} {n}"), "spaceId": s, "categoryId": c}), &at(n), who);
                    let res = http
                        .post(format!("{base}/api/sync"))
                        .bearer_auth(client.token().unwrap())
                        .json(&json!({"deviceId": who, "lastSyncTimestamp": null, "changes": [ch], "limit": 1}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status(), 200);
                    n += 1;
                }
                n as usize
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Carol's phone had synced her own (empty) data before.
    let (before, _) = device_view(&p.carol, None, None).await;
    share(&p.alice, &p.carol, rid(&s), Role::Viewer)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // She pulls in small pages while the writers go on.
    let (mid, removed) = device_view(&p.carol, Some(&before.cursor), Some(7)).await;
    assert!(removed.is_empty());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written: usize = futures_join(writers).await.into_iter().sum();
    assert!(written > 10, "the writers ran: {written}");
    // Caught up, her device holds exactly the space as its owner sees it:
    // nothing missed or stale across the move-in and the writes.
    let (rest, _) = device_view(&p.carol, Some(&mid.cursor), Some(7)).await;
    let mut carol_has = mid.by_id.clone();
    carol_has.extend(rest.by_id);
    let (alice_all, _) = device_view(&p.alice, None, None).await;
    let space_of_alice: BTreeMap<&String, &Value> = alice_all
        .by_id
        .iter()
        .filter(|(id, r)| {
            **id == s || r["spaceId"] == json!(s) || r["categoryId"] == json!(c) || **id == c
        })
        .collect();
    let carol_sees: BTreeMap<&String, &Value> = carol_has.iter().collect();
    assert_eq!(carol_sees, space_of_alice, "Carol's copy of the space");
    // Removed while the writers write again: the removal, then nothing.
    let burst = {
        let (alice, s, c) = (p.alice.clone(), s.clone(), c.clone());
        let base = app.base.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            for n in 0..30 {
                let ch = change(
                    &format!("late-{n}"),
                    &new_id(),
                    "item",
                    "create",
                    json!({"title": "after", "spaceId": s, "categoryId": c}),
                    &at(900 + n),
                    "a",
                );
                http.post(format!("{base}/api/sync"))
                    .bearer_auth(alice.token().unwrap())
                    .json(&json!({"deviceId": "a", "lastSyncTimestamp": null, "changes": [ch], "limit": 1}))
                    .send()
                    .await
                    .unwrap();
            }
        })
    };
    p.alice
        .remove_member(rid(&s), p.carol.me().await.unwrap().id)
        .await
        .unwrap();
    burst.await.unwrap();
    let (after, removed) = device_view(&p.carol, Some(&rest.cursor), None).await;
    assert_eq!(removed, vec![rid(&s)], "the removal, once");
    assert!(
        after.by_id.is_empty(),
        "nothing of the space after it: {:?}",
        after.by_id.keys()
    );
    let (later, removed) = device_view(&p.carol, Some(&after.cursor), None).await;
    assert!(
        removed.is_empty() && later.by_id.is_empty(),
        "and nothing ever after"
    );
    app.stop().await;
}

async fn futures_join(handles: Vec<tokio::task::JoinHandle<usize>>) -> Vec<usize> {
    let mut out = vec![];
    for h in handles {
        out.push(h.await.expect("writer"));
    }
    out
}

/// A member who pulled all of the space, then was added to it again after
/// a removal it never pulled, continues exactly; one who never pulled the
/// space while a member gets nothing and no removal.
async fn a_removed_members_device_is_right_whatever_the_order_of_its_pulls(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let p = people(&app).await;
    let (s, _, items) = seed_space(&app, &p.alice).await;
    let carol = p.carol.me().await.unwrap().id;
    // Never pulled while a member: nothing, no removal.
    let (first, _) = device_view(&p.carol, None, None).await;
    share(&p.alice, &p.carol, rid(&s), Role::Editor)
        .await
        .unwrap();
    p.alice.remove_member(rid(&s), carol).await.unwrap();
    let (v, removed) = device_view(&p.carol, Some(&first.cursor), None).await;
    assert!(v.by_id.is_empty() && removed.is_empty(), "{removed:?}");
    // Pulled while a member; removed and added back before it pulled again:
    // it simply continues, and gets what changed meanwhile.
    share(&p.alice, &p.carol, rid(&s), Role::Editor)
        .await
        .unwrap();
    let (inside, _) = device_view(&p.carol, Some(&v.cursor), None).await;
    assert_eq!(inside.live().len(), 4);
    p.alice.remove_member(rid(&s), carol).await.unwrap();
    app.sync(
        raw(&p.alice),
        "alice-laptop",
        Value::Null,
        vec![change(
            "late",
            &items[0],
            "item",
            "update",
            json!({"notes": "while away"}),
            &at(50),
            "alice-laptop",
        )],
    )
    .await;
    share(&p.alice, &p.carol, rid(&s), Role::Viewer)
        .await
        .unwrap();
    let (back, removed) = device_view(&p.carol, Some(&inside.cursor), None).await;
    assert!(removed.is_empty());
    assert_eq!(back.by_id.keys().collect::<Vec<_>>(), vec![&items[0]]);
    assert_eq!(back.by_id[&items[0]]["notes"], json!("while away"));
    app.stop().await;
}

/// Roles in writes, per operation: a viewer (and a member made viewer while
/// offline) is refused with `forbidden` and the rest of the batch proceeds;
/// a non-member's guesses behave as if the ids did not exist.
async fn writes_follow_roles_and_non_members_guess_in_vain(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let p = people(&app).await;
    let (s, c, items) = seed_space(&app, &p.alice).await;
    share(&p.alice, &p.bob, rid(&s), Role::Editor)
        .await
        .unwrap();
    let (bob_view, _) = device_view(&p.bob, None, None).await;
    // Bob edits offline; meanwhile he becomes a viewer.
    let bob_id = p.bob.me().await.unwrap().id;
    p.alice
        .set_role(rid(&s), bob_id, Role::Viewer)
        .await
        .unwrap();
    let mine = new_id();
    let data = app
        .sync(
            raw(&p.bob),
            "bob-phone",
            json!(bob_view.cursor),
            vec![
                change(
                    "b1",
                    &items[0],
                    "item",
                    "update",
                    json!({"title": "Dune (2021)"}),
                    &at(10),
                    "bob-phone",
                ),
                change(
                    "b2",
                    &new_id(),
                    "item",
                    "create",
                    json!({"title": "x", "categoryId": c}),
                    &at(11),
                    "bob-phone",
                ),
                change(
                    "b3",
                    &s,
                    "space",
                    "delete",
                    Value::Null,
                    &at(12),
                    "bob-phone",
                ),
                change(
                    "b4",
                    &mine,
                    "space",
                    "create",
                    json!({"name": "Bob's own"}),
                    &at(13),
                    "bob-phone",
                ),
            ],
        )
        .await;
    let codes: Vec<Value> = data["acknowledged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["error"]["code"].clone())
        .collect();
    assert_eq!(
        codes,
        vec![
            json!("forbidden"),
            json!("forbidden"),
            json!("forbidden"),
            Value::Null
        ]
    );
    // Carol, never a member, guesses the ids: not found, unknown reference,
    // and a create with the space's id makes a space of her own.
    let data = app
        .sync(
            raw(&p.carol),
            "carol",
            Value::Null,
            vec![
                change(
                    "c1",
                    &items[0],
                    "item",
                    "update",
                    json!({"title": "mine"}),
                    &at(20),
                    "carol",
                ),
                change(
                    "c2",
                    &items[1],
                    "item",
                    "delete",
                    Value::Null,
                    &at(21),
                    "carol",
                ),
                change(
                    "c3",
                    &new_id(),
                    "item",
                    "create",
                    json!({"title": "x", "spaceId": s}),
                    &at(22),
                    "carol",
                ),
            ],
        )
        .await;
    let codes: Vec<Value> = data["acknowledged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["error"]["code"].clone())
        .collect();
    assert_eq!(
        codes,
        vec![
            json!("not_found"),
            json!("not_found"),
            json!("unknown_reference")
        ]
    );
    // With Alice's cursor (it names the space's scope), Carol gets nothing of
    // it and no removal: a scope she never belonged to is ignored.
    let (alice_view, _) = device_view(&p.alice, None, None).await;
    assert!(alice_view.cursor.contains(".s"), "{}", alice_view.cursor);
    let res = app
        .sync_raw(
            raw(&p.carol),
            json!({"deviceId": "carol", "lastSyncTimestamp": "v1.u.0.s1.0.s2.0.s3.0.s4.0.s5.0"}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(res.body["data"]["removedSpaces"].is_null(), "{}", res.body);
    let leaked: Vec<&str> = ["spaces", "categories", "items"]
        .iter()
        .flat_map(|k| res.body["data"]["serverUpdates"][k].as_array().unwrap())
        .filter_map(|r| r["id"].as_str())
        .filter(|id| *id == s || *id == c || items.iter().any(|i| i == id))
        .collect();
    assert!(leaked.is_empty(), "{leaked:?}");
    app.stop().await;
}

/// A change in a shared space pokes every member's stream; being invited
/// to a space, then added by accepting, pokes the newcomer's.
async fn pokes_reach_every_member(db: Db) {
    let tdb = TestDb::new(db).await;
    let app = spawn_app(&tdb).await;
    let p = people(&app).await;
    let (s, c, _) = seed_space(&app, &p.alice).await;
    share(&p.alice, &p.bob, rid(&s), Role::Editor)
        .await
        .unwrap();
    let mut bob_stream = p.bob.stream("bob-phone").open().await.unwrap();
    let mut carol_stream = p.carol.stream("carol-phone").open().await.unwrap();
    app.sync(
        raw(&p.alice),
        "alice-laptop",
        Value::Null,
        vec![change(
            "new",
            &new_id(),
            "item",
            "create",
            json!({"title": "Her", "categoryId": c}),
            &at(9),
            "alice-laptop",
        )],
    )
    .await;
    let ev = tokio::time::timeout(Duration::from_secs(10), bob_stream.next_event())
        .await
        .expect("Bob is poked")
        .expect("an event")
        .unwrap();
    assert!(ev.sync_timestamp.contains(".s"), "{}", ev.sync_timestamp);
    share(&p.alice, &p.carol, rid(&s), Role::Viewer)
        .await
        .unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(10), carol_stream.next_event())
        .await
        .expect("Carol is poked when the space is shared with her")
        .expect("an event")
        .unwrap();
    // Pulling from her old cursor now brings the space in.
    let (v, _) = device_view(&p.carol, Some("v1.u.0"), None).await;
    assert!(v.by_id.contains_key(&s), "{}", ev.sync_timestamp);
    app.stop().await;
}

backend_tests!(
    members_endpoints_answer_as_documented,
    move_in_and_move_out_are_exact_with_writers_running,
    a_removed_members_device_is_right_whatever_the_order_of_its_pulls,
    writes_follow_roles_and_non_members_guess_in_vain,
    pokes_reach_every_member,
);
