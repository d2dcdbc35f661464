//! The socket tasks of a connection: the reader (frames, decryption,
//! decoding, signature checks off the driver's task) and the writer,
//! joined to the driver by small bounded channels ([`Socket`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{ConnectionError, Counters};
use crate::feed::message::Message;
use crate::feed::validate::Checked;
use crate::proto::frame::{FrameDecoder, encode_frame};
use crate::proto::handshake::Transport;
use crate::proto::wire::Packet;

/// How long the writer may take to send what is queued when the
/// connection ends: a peer that does not read cannot hold us longer.
const WRITER_DRAIN: Duration = Duration::from_secs(5);
/// The most bytes the reader takes from the socket at once.
const READ_CHUNK: usize = 64 * 1024;

/// What the reader hands over: a run of decoded items, or why it stopped.
pub(super) type Decoded = Result<Vec<Inbound>, ConnectionError>;

/// A connection's socket past the handshake: the reader and writer tasks,
/// the channels to them, and the bytes they moved.
pub(super) struct Socket {
    /// What the reader decoded, in the order it arrived.
    pub(super) inbound: mpsc::Receiver<Decoded>,
    /// Batches of frame plaintexts for the writer.
    pub(super) outbound: mpsc::Sender<Vec<Vec<u8>>>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
    bytes_in: Arc<AtomicU64>,
    bytes_out: Arc<AtomicU64>,
}

impl Socket {
    /// Starts the reader and writer over `stream`. `decoder` may already
    /// hold the first transport frames, and `first` holds packets already
    /// read and decrypted (a responder reads the dialer's first frame
    /// itself: see `Node::intake`); `totals` are the node's counters.
    pub(super) fn open(
        stream: TcpStream,
        transport: Transport,
        decoder: FrameDecoder,
        first: Vec<Packet>,
        totals: &Arc<Counters>,
    ) -> Socket {
        let transport = Arc::new(Mutex::new(transport));
        let (read_half, write_half) = stream.into_split();
        let bytes_in = Arc::new(AtomicU64::new(0));
        let bytes_out = Arc::new(AtomicU64::new(0));
        let (in_tx, inbound) = mpsc::channel(4);
        let (outbound, out_rx) = mpsc::channel(2);
        let reader = tokio::spawn(read_task(
            read_half,
            decoder,
            first,
            transport.clone(),
            in_tx,
            bytes_in.clone(),
            totals.clone(),
        ));
        let writer = tokio::spawn(write_task(
            write_half,
            transport,
            out_rx,
            bytes_out.clone(),
            totals.clone(),
        ));
        Socket {
            inbound,
            outbound,
            reader,
            writer,
            bytes_in,
            bytes_out,
        }
    }

    /// Ends the connection: lets the writer send what is queued and close
    /// its side, then reads on until the peer closes too, for at most
    /// `wait`. Closing a socket with unread data resets the connection, and
    /// a reset makes the peer's kernel drop what its node has not read yet,
    /// our last packets included. Returns the bytes read and written.
    pub(super) async fn close(self, wait: Duration) -> (u64, u64) {
        let Socket {
            mut inbound,
            outbound,
            reader,
            mut writer,
            bytes_in,
            bytes_out,
        } = self;
        drop(outbound);
        if tokio::time::timeout(WRITER_DRAIN, &mut writer)
            .await
            .is_err()
        {
            writer.abort();
        }
        let _ = tokio::time::timeout(wait, async { while inbound.recv().await.is_some() {} }).await;
        reader.abort();
        (
            bytes_in.load(Ordering::Relaxed),
            bytes_out.load(Ordering::Relaxed),
        )
    }
}

/// Pushes bytes that were read to fit the decoder's room.
pub(super) fn push_all(decoder: &mut FrameDecoder, bytes: &[u8]) -> Result<(), ConnectionError> {
    if decoder.push(bytes) == bytes.len() {
        Ok(())
    } else {
        Err(ConnectionError::Task("frame buffer overflow".into()))
    }
}

/// What the reader hands to the driver, in the order it arrived.
pub(super) enum Inbound {
    /// A control packet.
    Packet(Packet),
    /// A run of messages, decoded and signature-checked.
    Messages(Checked),
    /// A message packet that does not decode: the connection must close
    /// after the messages before it are stored.
    Malformed(crate::feed::message::DecodeError),
}

/// Most frames decoded together: frames that have already arrived are
/// checked as one run, because ed25519 batch verification gets cheaper per
/// signature with bigger batches (see `validate::VERIFY_BATCH`).
const MAX_FRAMES_PER_DECODE: usize = 8;

/// Decodes the packets of consecutive frames, in order; runs of messages
/// are decoded and their signatures checked (CPU work, on the blocking
/// pool).
async fn decode_frames(plains: Vec<Vec<u8>>) -> Result<Vec<Inbound>, ConnectionError> {
    let mut packets = Vec::new();
    for plain in &plains {
        packets.extend(Packet::decode_all(plain)?);
    }
    let messages = packets
        .iter()
        .filter(|p| matches!(p, Packet::Message(_)))
        .count();
    if messages == 0 {
        return Ok(packets.into_iter().map(Inbound::Packet).collect());
    }
    // A message or two (a live push) is checked here: a signature takes
    // tens of microseconds, less than handing it to another thread and
    // waking this task again.
    if messages <= INLINE_MESSAGES {
        return Ok(decode_and_check(packets));
    }
    tokio::task::spawn_blocking(move || decode_and_check(packets))
        .await
        .map_err(|e| ConnectionError::Task(e.to_string()))
}

/// Most messages in the frames read at once that are checked on the
/// connection's own task rather than on the blocking pool.
const INLINE_MESSAGES: usize = 2;

/// Decodes and signature-checks the message packets among `packets`,
/// keeping their order with the control packets.
fn decode_and_check(packets: Vec<Packet>) -> Vec<Inbound> {
    let mut items = Vec::new();
    let mut run = Vec::new();
    for packet in packets {
        match packet {
            Packet::Message(bytes) => match Message::decode(bytes) {
                Ok(msg) => run.push(msg),
                Err(e) => {
                    // Nothing after a malformed message counts.
                    if !run.is_empty() {
                        items.push(Inbound::Messages(Checked::new(std::mem::take(&mut run))));
                    }
                    items.push(Inbound::Malformed(e));
                    return items;
                }
            },
            other => {
                if !run.is_empty() {
                    items.push(Inbound::Messages(Checked::new(std::mem::take(&mut run))));
                }
                items.push(Inbound::Packet(other));
            }
        }
    }
    if !run.is_empty() {
        items.push(Inbound::Messages(Checked::new(run)));
    }
    items
}

/// Reads frames, decrypts and decodes them, and hands them over. The
/// bounded channel makes a slow driver slow down the peer (TCP backpressure).
async fn read_task(
    read: tokio::net::tcp::OwnedReadHalf,
    mut decoder: FrameDecoder,
    first: Vec<Packet>,
    transport: Arc<Mutex<Transport>>,
    tx: mpsc::Sender<Decoded>,
    bytes_in: Arc<AtomicU64>,
    totals: Arc<Counters>,
) {
    if !first.is_empty() {
        let items = tokio::task::spawn_blocking(move || decode_and_check(first))
            .await
            .map_err(|e| ConnectionError::Task(e.to_string()));
        let failed = items.is_err();
        if tx.send(items).await.is_err() || failed {
            return;
        }
    }
    // Allocated when bytes are there to read, freed when the socket would
    // block: most of a hub's thousand connections wait most of the time,
    // and each would otherwise hold READ_CHUNK for nothing.
    let mut buf: Vec<u8> = Vec::new();
    // An error met while gathering extra frames, delivered after them.
    let mut pending_error: Option<ConnectionError> = None;
    loop {
        if let Some(e) = pending_error.take() {
            let _ = tx.send(Err(e)).await;
            return;
        }
        let frame = loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => break Ok(frame),
                Ok(None) => {}
                Err(e) => break Err(ConnectionError::from(e)),
            }
            let want = decoder.room().min(READ_CHUNK);
            if buf.is_empty() {
                buf = vec![0u8; READ_CHUNK];
            }
            match read.try_read(&mut buf[..want]) {
                Ok(0) => break Err(ConnectionError::Closed),
                Ok(n) => {
                    bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                    totals.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                    if let Err(e) = push_all(&mut decoder, &buf[..n]) {
                        break Err(e);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    buf = Vec::new();
                    decoder.release_idle();
                    if let Err(e) = read.readable().await {
                        break Err(e.into());
                    }
                }
                Err(e) => break Err(e.into()),
            }
        };
        let mut frames = match frame {
            Ok(f) => vec![f],
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        // Add frames that are already here, without waiting for more.
        while frames.len() < MAX_FRAMES_PER_DECODE {
            match decoder.next_frame() {
                Ok(Some(f)) => {
                    frames.push(f);
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    pending_error = Some(e.into());
                    break;
                }
            }
            let want = decoder.room().min(READ_CHUNK);
            if buf.is_empty() {
                buf = vec![0u8; READ_CHUNK];
            }
            match read.try_read(&mut buf[..want]) {
                Ok(0) => {
                    pending_error = Some(ConnectionError::Closed);
                    break;
                }
                Ok(n) => {
                    bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                    totals.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                    if let Err(e) = push_all(&mut decoder, &buf[..n]) {
                        pending_error = Some(e);
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    pending_error = Some(e.into());
                    break;
                }
            }
        }
        let mut plains = Vec::with_capacity(frames.len());
        {
            let mut transport = transport.lock().unwrap_or_else(|p| p.into_inner());
            for f in &frames {
                match transport.decrypt(f) {
                    Ok(plain) => plains.push(plain),
                    Err(e) => {
                        // The frames before it still count.
                        pending_error = Some(e.into());
                        break;
                    }
                }
            }
        }
        let items = if plains.is_empty() {
            Err(pending_error
                .take()
                .unwrap_or_else(|| ConnectionError::Task("no frame to decode".into())))
        } else {
            decode_frames(plains).await
        };
        let failed = items.is_err();
        if tx.send(items).await.is_err() || failed {
            return;
        }
    }
}

/// Encrypts and writes batches of frame plaintexts.
async fn write_task(
    mut write: tokio::net::tcp::OwnedWriteHalf,
    transport: Arc<Mutex<Transport>>,
    mut rx: mpsc::Receiver<Vec<Vec<u8>>>,
    bytes_out: Arc<AtomicU64>,
    totals: Arc<Counters>,
) {
    while let Some(frames) = rx.recv().await {
        let mut wire = Vec::new();
        for plain in frames {
            let sealed = transport
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .encrypt(&plain);
            let Ok(frame) = sealed
                .map_err(ConnectionError::from)
                .and_then(|c| Ok(encode_frame(&c)?))
            else {
                return;
            };
            wire.extend_from_slice(&frame);
        }
        if write.write_all(&wire).await.is_err() {
            return;
        }
        bytes_out.fetch_add(wire.len() as u64, Ordering::Relaxed);
        totals
            .bytes_out
            .fetch_add(wire.len() as u64, Ordering::Relaxed);
    }
    let _ = write.shutdown().await;
}
