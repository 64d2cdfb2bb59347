//! Issue 11's bench: a space shared by 100 members with 10,000 items. A
//! write into it must cost what a personal write costs (no row per member),
//! and a new member's move-in brings the whole space at its next pull.

use std::time::Instant;

use anyhow::{ensure, Context, Result};
use serde_json::json;
use tidesync_client::{new_record_id, ChangeBody, EntityType, OpKind};
use tidesync_protocol::scope::Role;
use tidesync_testkit::share;

use crate::server::{Server, Target};
use crate::tidesync::{client, count_items, fig, push_body, register};
use crate::{secs, Args, Figure};

pub async fn run(args: &Args, target: &Target) -> Result<Vec<Figure>> {
    let (members, items, batch) = (args.space_members, args.space_items, args.batch);
    let server = Server::start(&args.server_bin, target).await?;
    let base = client(&server.base)?;
    let owner = register(&base, "owner@example.com").await?;
    let space = new_record_id();
    let create = ChangeBody::new(
        "space",
        EntityType::Space,
        OpKind::Create,
        space,
        json!({"name": "Shared"}).as_object().cloned(),
    )
    .at("2025-01-01T00:00:00.000Z")
    .by("owner-a");
    owner.sync(&push_body("owner-a", vec![create])).await?;
    let mut member = None;
    for m in 1..members {
        let email = format!("member{m}@example.com");
        let c = register(&base, &email).await?;
        share(&owner, &c, space, Role::Editor).await?;
        member.get_or_insert(c);
    }
    let member = member.context("at least two members")?;

    let t = Instant::now();
    for b in 0..items.div_ceil(batch) {
        let changes = (b * batch..((b + 1) * batch).min(items))
            .map(|k| {
                ChangeBody::new(
                    format!("i-{k}"),
                    EntityType::Item,
                    OpKind::Create,
                    new_record_id(),
                    json!({"spaceId": space, "title": format!("Shared item {k}"), "type": "movie",
                           "movieId": format!("{}", 27000 + k), "order": k})
                    .as_object()
                    .cloned(),
                )
                .at("2025-01-01T00:00:00.000Z")
                .by("owner-a")
            })
            .collect();
        let d = owner.sync(&push_body("owner-a", changes)).await?;
        ensure!(d.acknowledged.iter().all(|a| a.success), "a create failed");
    }
    let push = items as f64 / secs(t.elapsed());
    eprintln!("  shared push: {push:.0} ops/s");

    let t = Instant::now();
    let (got, _) = count_items(member.pages("member-a", None, None)).await?;
    let pull = got as f64 / secs(t.elapsed());
    ensure!(got == items, "the member pulled {got} of {items} items");
    eprintln!("  shared pull: {pull:.0} records/s");

    // Move-in: a user whose cursor is already past every record.
    let email = "newcomer@example.com";
    let newcomer = register(&base, email).await?;
    let first = newcomer
        .pull("new-a", None, None)
        .await
        .context("the newcomer's first pull")?;
    let cursor = first.sync_timestamp.clone();
    // Timed from the acceptance, which does what adding a member did.
    let invitation = owner.invite(space, email, Role::Viewer).await?;
    let t = Instant::now();
    newcomer.accept_invitation(invitation.id).await?;
    let (got, _) = count_items(newcomer.pages("new-a", Some(&cursor), None)).await?;
    let move_in = t.elapsed();
    ensure!(got == items, "move-in brought {got} of {items} items");
    eprintln!("  move-in: {:.0} ms", move_in.as_secs_f64() * 1e3);

    Ok(vec![
        fig("shared push", target, push, "ops/s",
            format!("{items} creates into a space with {members} members, batches of {batch}")),
        fig("shared pull", target, pull, "records/s",
            format!("one member pulls those {items} from scratch, default page (1000)")),
        fig("shared move-in", target, move_in.as_secs_f64() * 1e3, "ms",
            format!("a new member, cursor already past the space: it accepts an invitation, then its next pull brings all {items} items")),
    ])
}
