//! A TCP forwarder in the root namespace, on a database link's root-side
//! address, to PostgreSQL (which listens on loopback only): the instance's
//! packets to the database cross the veth link the test shapes. The
//! forwarder plays the database host's end of every connection, and adds
//! the link's delay (each chunk is passed on `delay` after it arrived, in
//! order), since this kernel has no `netem`.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub struct Forwarder {
    pub addr: SocketAddr,
    /// Bumped by [`Forwarder::sever`]: every open connection ends.
    severed: watch::Sender<u64>,
    delay: watch::Sender<Duration>,
    accept: JoinHandle<()>,
}

impl Forwarder {
    /// Listens on `ip` (a free port), forwarding to `target`.
    pub async fn start(ip: &str, target: SocketAddr) -> Forwarder {
        let listener = TcpListener::bind((ip, 0))
            .await
            .unwrap_or_else(|e| panic!("forwarder bind on {ip}: {e}"));
        let addr = listener.local_addr().expect("forwarder address");
        let (severed, _) = watch::channel(0u64);
        let (delay, _) = watch::channel(Duration::ZERO);
        let (tx, delays) = (severed.clone(), delay.clone());
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (sever, delay) = (tx.subscribe(), delays.subscribe());
                tokio::spawn(relay(client, target, sever, delay));
            }
        });
        Forwarder {
            addr,
            severed,
            delay,
            accept,
        }
    }

    /// Each way, from now on (chunks already in flight keep theirs).
    pub fn set_delay(&self, d: Duration) {
        self.delay.send_replace(d);
    }

    /// Ends every open connection as a database host that lost their state
    /// would (a restart, a failover, TCP keepalive giving up during a long
    /// partition): the server side is closed, the instance's side reset.
    pub fn sever(&self) {
        self.severed.send_modify(|n| *n += 1);
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.accept.abort();
        self.sever();
    }
}

async fn relay(
    client: TcpStream,
    target: SocketAddr,
    mut sever: watch::Receiver<u64>,
    delay: watch::Receiver<Duration>,
) {
    let Ok(server) = TcpStream::connect(target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let severed = tokio::select! {
        _ = async {
            tokio::join!(
                pump(&mut cr, &mut sw, delay.clone()),
                pump(&mut sr, &mut cw, delay),
            )
        } => false,
        _ = sever.changed() => true,
    };
    if severed {
        if let Ok(client) = cr.reunite(cw) {
            // Reset, not close: the database host forgets the connection
            // without a goodbye (and the RST is lost while the link is cut).
            let _ = client.set_zero_linger();
        }
    }
}

/// Copies `from` to `to`, each chunk `delay` after it was read; at the end
/// of `from`, shuts `to` down.
async fn pump(from: &mut OwnedReadHalf, to: &mut OwnedWriteHalf, delay: watch::Receiver<Duration>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let read = async move {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n @ 1..) = from.read(&mut buf).await {
            let due = Instant::now() + *delay.borrow();
            if tx.send((due, buf[..n].to_vec())).is_err() {
                return;
            }
        }
    };
    let write = async move {
        while let Some((due, bytes)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(read, write);
}
