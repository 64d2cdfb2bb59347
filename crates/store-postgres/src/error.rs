use tidesync_store::StoreError;

/// Classifies a sqlx error: the database down, unreachable, out of
/// resources, shutting down, or a serialization failure / deadlock is
/// transient (503, retry); the rest are bugs or corruption.
pub fn db(e: sqlx::Error) -> StoreError {
    if is_transient(&e) {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Internal(e.to_string())
    }
}

fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(d) => d.code().is_some_and(|code| {
            // SQLSTATE classes: 08 connection exception, 53 insufficient
            // resources, 57P operator intervention (shutdown, cannot connect
            // now); 40001 serialization failure, 40P01 deadlock; 25P03
            // idle_in_transaction_session_timeout (the link was too slow).
            code.starts_with("08")
                || code == "25P03"
                || code.starts_with("53")
                || code.starts_with("57P")
                || code == "40001"
                || code == "40P01"
        }),
        _ => false,
    }
}
