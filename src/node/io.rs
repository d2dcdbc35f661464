//! The socket tasks of a connection: the reader (frames, decryption,
//! decoding, signature checks off the driver's task) and the writer.

use super::*;

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
pub(super) async fn decode_frames(plains: Vec<Vec<u8>>) -> Result<Vec<Inbound>, ConnectionError> {
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
pub(super) async fn read_task(
    mut read: tokio::net::tcp::OwnedReadHalf,
    mut decoder: FrameDecoder,
    transport: Arc<Mutex<Transport>>,
    tx: mpsc::Sender<Result<Vec<Inbound>, ConnectionError>>,
    bytes_in: Arc<AtomicU64>,
    totals: Arc<Counters>,
) {
    let mut buf = vec![0u8; 64 * 1024];
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
            let want = decoder.room().min(buf.len());
            match read.read(&mut buf[..want]).await {
                Ok(0) => break Err(ConnectionError::Closed),
                Ok(n) => {
                    bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                    totals.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                    if let Err(e) = push_all(&mut decoder, &buf[..n]) {
                        break Err(e);
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
            let want = decoder.room().min(buf.len());
            match read.try_read(&mut buf[..want]) {
                Ok(0) => {
                    pending_error = Some(ConnectionError::Closed);
                    break;
                }
                Ok(n) => {
                    bytes_in.fetch_add(n as u64, Ordering::Relaxed);
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
pub(super) async fn write_task(
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
