//! A complete round against a running server:
//! `cargo run -p tidesync-client --example quickstart -- http://localhost:5000`

use std::time::Duration;

use tidesync_client::{new_record_id, ChangeBody, Client, EntityType, OpKind, SyncBody};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://localhost:5000".into());
    let anon = Client::new(&base)?;
    let email = format!("quickstart-{}@example.com", new_record_id());
    let auth = anon
        .register(&email, "correct horse", "Quick Start")
        .await?;
    let laptop = anon.with_token(&auth.token);
    println!("registered {} ({})", auth.user.email, auth.user.id);

    // The phone listens before the laptop writes.
    let phone = laptop.clone();
    let mut events = phone.stream("phone").open().await?;

    let data = serde_json::json!({"title": "Watch Inception", "isCompleted": false});
    let change = ChangeBody::new(
        "quickstart-op-1",
        EntityType::Item,
        OpKind::Create,
        new_record_id(),
        data.as_object().cloned(),
    );
    let body = SyncBody {
        device_id: "laptop".into(),
        changes: vec![change],
        ..SyncBody::default()
    };
    let answer = laptop.sync(&body).await?;
    println!("acks: {:?}", answer.acknowledged);

    let event = tokio::time::timeout(Duration::from_secs(10), events.next_event())
        .await?
        .ok_or("the stream ended")??;
    println!("phone poked: changes up to {}", event.sync_timestamp);

    let all = phone.pull_all("phone", None, None).await?;
    for (kind, record) in all.updates.iter() {
        println!("phone received {kind:?}: {}", record.get());
    }
    println!(
        "phone's cursor: {} ({} pages)",
        all.sync_timestamp, all.pages
    );

    // A retry of the same operation is a replay: nothing applied twice.
    let again = laptop.sync(&body).await?;
    println!("retried: duplicate = {}", again.acknowledged[0].duplicate);
    Ok(())
}
