//! A decrypted frame's plaintext: replication packets.
#![no_main]
use libfuzzer_sys::fuzz_target;
use potluck::wire::Packet;

fuzz_target!(|data: &[u8]| {
    if let Ok(packets) = Packet::decode_all(data) {
        // What decodes encodes again.
        let mut packer = potluck::wire::FramePacker::new();
        for p in &packets {
            let _ = packer.push(p);
        }
        let _ = packer.take();
    }
});
