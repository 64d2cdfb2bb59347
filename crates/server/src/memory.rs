//! Giving freed memory back to the operating system. glibc's allocator
//! keeps the pages of freed blocks mapped for reuse, so after a burst (say,
//! exports of big records that ended, or were cut because their clients
//! stopped reading) the process's RSS stays at its peak although the
//! memory is free. `malloc_trim` returns those pages.

/// Returns free heap pages to the system, off the executor (it walks
/// every arena: a few milliseconds on a large heap). Elsewhere than glibc,
/// nothing to do.
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let trim = || {
            // SAFETY: malloc_trim only walks glibc's own arenas and
            // releases pages no block uses; it has no preconditions.
            unsafe {
                libc::malloc_trim(0);
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn_blocking(trim);
            }
            Err(_) => trim(),
        }
    }
}
