//! Speaking the wire by hand, for tests that play a hostile peer or hub:
//! one frame in, packets out, over a blocking socket.

use std::io::{Read, Write};
use std::net::TcpStream;

use potluck::proto::frame::{FrameDecoder, encode_frame};
use potluck::proto::handshake::Transport;
use potluck::proto::wire::{FramePacker, Packet};

/// Reads one frame; `None` when the peer closes or sends garbage.
pub fn read_frame(stream: &mut TcpStream, decoder: &mut FrameDecoder) -> Option<Vec<u8>> {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(frame) = decoder.next_frame().ok()? {
            return Some(frame);
        }
        let want = decoder.room().min(buf.len());
        let n = stream.read(&mut buf[..want]).ok()?;
        if n == 0 {
            return None;
        }
        assert_eq!(decoder.push(&buf[..n]), n, "read at most room() bytes");
    }
}

/// Packs, encrypts and writes `packets`; false when the write fails.
pub fn send(stream: &mut TcpStream, transport: &mut Transport, packets: &[Packet]) -> bool {
    let mut packer = FramePacker::new();
    for p in packets {
        packer.push(p).expect("packet fits");
    }
    let mut wire = Vec::new();
    for plain in packer.take() {
        wire.extend(encode_frame(&transport.encrypt(&plain).expect("encrypt")).expect("frame"));
    }
    stream.write_all(&wire).is_ok()
}
