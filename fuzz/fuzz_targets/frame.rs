//! The byte stream of a connection, cut into frames: pushed in pieces of
//! the sizes the input chooses, every frame taken out, never more than the
//! decoder's bound buffered.
#![no_main]
use libfuzzer_sys::fuzz_target;
use potluck::proto::frame::FrameDecoder;

fuzz_target!(|data: &[u8]| {
    let Some((&step, mut rest)) = data.split_first() else {
        return;
    };
    let step = usize::from(step).max(1) * 7;
    let mut decoder = FrameDecoder::new();
    while !rest.is_empty() {
        let piece = &rest[..step.min(rest.len())];
        let taken = decoder.push(piece);
        rest = &rest[taken..];
        loop {
            match decoder.next_frame() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
        if taken == 0 {
            return;
        }
    }
});
