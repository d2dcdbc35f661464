//! A replication session fed whatever packets decode from the input, as
//! a peer past the handshake could send them.
#![no_main]
use libfuzzer_sys::fuzz_target;
use potluck::replicate::{Clock, Policy, Session};
use potluck::wire::Packet;

fuzz_target!(|data: &[u8]| {
    let Ok(packets) = Packet::decode_all(data) else {
        return;
    };
    let mut session = Session::new(&Policy::Open, Clock::new(), None);
    while session.poll_packet().is_some() {}
    for packet in packets {
        if session.on_packet(packet).is_err() {
            return;
        }
        while session.poll_packet().is_some() {}
        while session.next_range().is_some() {}
    }
    let _ = session.is_caught_up();
});
