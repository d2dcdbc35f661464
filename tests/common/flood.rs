//! A handshake flood (issue 20): many loopback source addresses that keep
//! opening handshakes and never finish them. Each flooder sends a valid
//! message 1 (the network key is public), reads the node's answer and
//! then stays silent: admitted, it holds a handshake slot until the
//! node's handshake deadline closes it; refused (a busy answer, or a
//! close without a word), it opens the next connection after a short
//! pause. Used by `tests/flood.rs` and by `benches/flood.rs`. Every loop
//! is bounded in count and in time; all traffic stays on loopback.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use potluck::proto::frame::{FrameDecoder, encode_frame};
use potluck::proto::handshake::{BUSY_MESSAGE, Handshake, NetworkKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinHandle;

/// Connections one flooder opens at most.
const MAX_ROUNDS: u64 = 100_000;
/// Longest wait for a connect or for the node's answer.
const ANSWER_WAIT: Duration = Duration::from_secs(5);

/// `count` loopback addresses spread over `subnets` /24s:
/// 127.0.S.H with S in 1..=subnets (round robin) and H from 1 up.
/// The node under test listens on 127.0.0.1, outside all of them.
pub fn sources(count: usize, subnets: usize) -> Vec<IpAddr> {
    let subnets = subnets.clamp(1, 250);
    (0..count)
        .map(|i| {
            let subnet = 1 + (i % subnets) as u8;
            let host = 1 + (i / subnets).min(253) as u8;
            IpAddr::V4(Ipv4Addr::new(127, 0, subnet, host))
        })
        .collect()
}

/// What the flooders saw so far.
#[derive(Debug, Default)]
pub struct Tally {
    /// Connections the node answered with handshake message 2: each holds
    /// a handshake slot until the node's deadline.
    pub admitted: AtomicU64,
    /// Connections refused: a busy answer, or closed before message 2.
    pub refused: AtomicU64,
}

/// A running flood; stops when [`Flood::stop`] is called or dropped, and
/// by its time limit at the latest.
pub struct Flood {
    pub tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Flood {
    /// One flooder per address of `sources`, against `target` on
    /// `network`, each pausing `pause` after a refusal, for `limit` at
    /// most.
    pub fn start(
        target: SocketAddr,
        sources: &[IpAddr],
        network: NetworkKey,
        pause: Duration,
        limit: Duration,
    ) -> Flood {
        let tally = Arc::new(Tally::default());
        let stop = Arc::new(AtomicBool::new(false));
        let until = Instant::now() + limit;
        let tasks = sources
            .iter()
            .map(|&source| {
                let tally = tally.clone();
                let stop = stop.clone();
                let network = network.clone();
                tokio::spawn(async move {
                    flooder(target, source, network, pause, until, &stop, &tally).await
                })
            })
            .collect();
        Flood { tally, stop, tasks }
    }

    /// (admitted, refused) so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.tally.admitted.load(Ordering::Relaxed),
            self.tally.refused.load(Ordering::Relaxed),
        )
    }

    /// Stops every flooder and closes its connection.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One flooder's loop (see the module's documentation).
async fn flooder(
    target: SocketAddr,
    source: IpAddr,
    network: NetworkKey,
    pause: Duration,
    until: Instant,
    stop: &AtomicBool,
    tally: &Tally,
) {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    for _ in 0..MAX_ROUNDS {
        if stop.load(Ordering::Relaxed) || Instant::now() >= until {
            return;
        }
        match one_round(target, source, &key, &network).await {
            Some(stream) => {
                tally.admitted.fetch_add(1, Ordering::Relaxed);
                // Hold the slot, silent, until the node gives up on us.
                hold(stream, until).await;
            }
            None => {
                tally.refused.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(pause).await;
            }
        }
    }
}

/// Connects from `source` and sends message 1: the open stream if the
/// node answered with message 2, `None` if it refused (or the connection
/// failed).
async fn one_round(
    target: SocketAddr,
    source: IpAddr,
    key: &SigningKey,
    network: &NetworkKey,
) -> Option<TcpStream> {
    let socket = TcpSocket::new_v4().ok()?;
    socket.bind(SocketAddr::new(source, 0)).ok()?;
    let mut stream = tokio::time::timeout(ANSWER_WAIT, socket.connect(target))
        .await
        .ok()?
        .ok()?;
    let mut hs = Handshake::initiator(key, network, None).ok()?;
    let first = encode_frame(&hs.next_outgoing().ok()??).ok()?;
    stream.write_all(&first).await.ok()?;
    let answer = tokio::time::timeout(ANSWER_WAIT, first_frame(&mut stream))
        .await
        .ok()??;
    (answer != BUSY_MESSAGE).then_some(stream)
}

/// The first frame the node sends, or `None` if it closes first.
async fn first_frame(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut decoder = FrameDecoder::new();
    let mut buf = [0u8; 1024];
    for _ in 0..64 {
        if let Some(frame) = decoder.next_frame().ok()? {
            return Some(frame);
        }
        let want = decoder.room().min(buf.len());
        let n = stream.read(&mut buf[..want]).await.ok()?;
        if n == 0 || decoder.push(&buf[..n]) < n {
            return None;
        }
    }
    None
}

/// Reads (and drops) until the node closes the connection, or `until`.
async fn hold(mut stream: TcpStream, until: Instant) {
    let mut buf = [0u8; 1024];
    let limit = until.saturating_duration_since(Instant::now());
    let _ = tokio::time::timeout(limit, async {
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                return;
            }
        }
    })
    .await;
}
