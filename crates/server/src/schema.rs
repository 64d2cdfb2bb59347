//! The data model a server runs: the `SCHEMA` file's, checked at start, or
//! the built-in bucket list; and, at start, its comparison with the schema
//! the deployment served before (docs/SCHEMA.md, "Changing the schema of a
//! running deployment").

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tidesync_protocol::schema::{compare, Schema, SchemaChange, SchemaProblem};
use tidesync_store::{Store, StoreError};

/// Why the schema file cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum SchemaFileError {
    #[error("cannot read the schema file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Every problem, each with its JSON path, on one line.
    #[error(
        "the schema file {} has {} problem{}: {}",
        path.display(),
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        list(problems)
    )]
    Invalid {
        path: PathBuf,
        problems: Vec<SchemaProblem>,
    },
}

/// Why the schema cannot replace the one served before.
#[derive(Debug, thiserror::Error)]
pub enum SchemaChangeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "the schema changes in {} way{} that break{} clients: {}; fix the schema, or start \
         with --allow-breaking-schema-changes (ALLOW_BREAKING_SCHEMA_CHANGES=true) to \
         serve it anyway (docs/SCHEMA.md)",
        changes.len(),
        if changes.len() == 1 { "" } else { "s" },
        if changes.len() == 1 { "s" } else { "" },
        list(changes)
    )]
    Breaking { changes: Vec<SchemaChange> },
    /// The stored document does not read any more (a tidesync with other
    /// rules wrote it): what changed cannot be told.
    #[error(
        "the schema served before no longer checks ({}): what changed cannot be told; start \
         with --allow-breaking-schema-changes to serve the new one",
        list(problems)
    )]
    Unreadable { problems: Vec<SchemaProblem> },
}

fn list<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// The schema to serve: the file's, checked, or the built-in one.
pub fn load(file: Option<&Path>) -> Result<Arc<Schema>, SchemaFileError> {
    let Some(path) = file else {
        return Ok(Arc::new(Schema::builtin().clone()));
    };
    let text = std::fs::read_to_string(path).map_err(|source| SchemaFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    Schema::parse(&text)
        .map(Arc::new)
        .map_err(|problems| SchemaFileError::Invalid {
            path: path.to_owned(),
            problems,
        })
}

/// What starting with `schema` did to the stored one.
#[derive(Debug, PartialEq, Eq)]
pub enum Evolution {
    /// No schema was stored (a new deployment, or one from before schemas
    /// were remembered): this one is now.
    First,
    Unchanged,
    /// Every change, each logged; the breaking ones only when allowed.
    Changed(Vec<SchemaChange>),
}

/// Compares `schema` with the one the deployment served last and, unless a
/// breaking change is not allowed, records it as the one served now.
pub async fn evolve(
    store: &dyn Store,
    schema: &Schema,
    allow_breaking: bool,
) -> Result<Evolution, SchemaChangeError> {
    let now = tidesync_protocol::time::now_millis();
    let json = schema.to_json_pretty();
    let Some(stored) = store.served_schema().await? else {
        store.record_served_schema(&json, now).await?;
        tracing::info!(
            collections = schema.collections.len(),
            "schema recorded as the one this deployment serves"
        );
        return Ok(Evolution::First);
    };
    let changes = match Schema::parse(&stored) {
        Ok(old) if old == *schema => return Ok(Evolution::Unchanged),
        Ok(old) => compare(&old, schema),
        Err(problems) if !allow_breaking => return Err(SchemaChangeError::Unreadable { problems }),
        Err(_) => {
            tracing::warn!(
                "the schema served before no longer checks; serving the new one as allowed"
            );
            vec![]
        }
    };
    let breaking: Vec<SchemaChange> = changes
        .iter()
        .filter(|c| c.is_breaking())
        .cloned()
        .collect();
    if !breaking.is_empty() && !allow_breaking {
        return Err(SchemaChangeError::Breaking { changes: breaking });
    }
    for c in &changes {
        if c.is_breaking() {
            tracing::warn!(change = %c, "breaking schema change, allowed by ALLOW_BREAKING_SCHEMA_CHANGES");
        } else {
            tracing::info!(change = %c, "additive schema change applied");
        }
    }
    store.record_served_schema(&json, now).await?;
    Ok(Evolution::Changed(changes))
}
