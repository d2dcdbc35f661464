//! Bytes from a socket into the frame decoder, in pieces of any size.
#![no_main]
use libfuzzer_sys::fuzz_target;
use potluck::frame::FrameDecoder;

fuzz_target!(|data: &[u8]| {
    let mut decoder = FrameDecoder::new();
    let mut rest = data;
    // The first byte picks the size of the pieces the socket delivers.
    let piece = usize::from(data.first().copied().unwrap_or(1)).max(1);
    while !rest.is_empty() {
        let want = decoder.room().min(piece).min(rest.len());
        if want == 0 {
            match decoder.next_frame() {
                Ok(Some(_)) => continue,
                _ => return,
            }
        }
        let taken = decoder.push(&rest[..want]);
        rest = &rest[taken..];
        loop {
            match decoder.next_frame() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
