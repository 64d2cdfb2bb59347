//! Connections whose client stops reading. hyper has no write timeout: a
//! response the client does not read waits in its buffers (and in what the
//! handler still holds) for as long as the connection stays open. Every
//! accepted connection goes through [`Guarded`], which closes it with an
//! error once a write has waited longer than its [`StallLimit`]; the limit
//! is off until a route arms it (the data export: `EXPORT_IDLE_TIMEOUT`).
//! Any progress (bytes accepted by the socket) restarts the clock, so a
//! slow reader is not cut; one that accepts nothing is.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// The longest a write of one connection may wait (0: no limit). Requests
/// carry it as an extension; arming it holds for the rest of the
/// connection.
#[derive(Clone, Debug, Default)]
pub struct StallLimit(Arc<AtomicU64>);

impl StallLimit {
    pub fn arm(&self, limit: Duration) {
        let ms = limit.as_millis().clamp(1, u64::MAX as u128) as u64;
        self.0.store(ms, Ordering::Relaxed);
    }

    fn get(&self) -> Option<Duration> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }
}

/// A connection's stream with its [`StallLimit`].
pub struct Guarded<S> {
    inner: S,
    limit: StallLimit,
    /// Set while a write waits: when it gives up.
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<S> Guarded<S> {
    pub fn new(inner: S, limit: StallLimit) -> Self {
        Guarded {
            inner,
            limit,
            deadline: None,
        }
    }

    fn watch<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if r.is_ready() {
            self.deadline = None;
            return r;
        }
        let Some(limit) = self.limit.get() else {
            return r;
        };
        // Polling the timer registers this task's waker: the connection is
        // woken when it fires, even though the socket never is.
        let deadline = self
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if deadline.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.deadline = None;
        tracing::info!(
            after_ms = limit.as_millis() as u64,
            "closing a connection whose client stopped reading"
        );
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client stopped reading the response",
        )))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, r)
    }

    // hyper queues body chunks without copying them when the stream takes
    // vectored writes: keep that.
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Writes until the peer's buffer is full, then one more.
    async fn fill(w: &mut Guarded<tokio::io::DuplexStream>) -> io::Result<()> {
        loop {
            w.write_all(&[0u8; 1024]).await?;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_that_waits_past_the_limit_fails_and_progress_restarts_the_clock() {
        let (a, mut b) = tokio::io::duplex(4096);
        let limit = StallLimit::default();
        let mut w = Guarded::new(a, limit.clone());
        // Unarmed: a full pipe just waits.
        assert!(tokio::time::timeout(Duration::from_secs(600), fill(&mut w))
            .await
            .is_err());
        limit.arm(Duration::from_secs(2));
        // A reader that takes a little every second keeps it going.
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                b.read_exact(&mut buf).await.unwrap();
            }
            b // then stops reading, still open
        });
        let t = tokio::time::Instant::now();
        let err = tokio::time::timeout(Duration::from_secs(60), fill(&mut w))
            .await
            .expect("the stalled write is cut")
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        let took = t.elapsed();
        assert!(
            took >= Duration::from_secs(11) && took < Duration::from_secs(13),
            "{took:?}"
        );
        drop(reader.await.unwrap());
    }
}
