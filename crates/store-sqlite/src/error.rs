use tidesync_store::StoreError;

/// Classifies a rusqlite error: busy, locked, read-only, I/O, full and
/// can't-open are transient (503, retry); the rest are bugs or corruption.
pub fn driver(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode::*;
    let transient = matches!(
        e.sqlite_error_code(),
        Some(
            DatabaseBusy
                | DatabaseLocked
                | ReadOnly
                | SystemIoFailure
                | DiskFull
                | CannotOpen
                | FileLockingProtocolFailed
        )
    );
    if transient {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Internal(e.to_string())
    }
}
