//! Unit tests of [`Sources`](super::Sources).

use super::*;

fn f(n: u8) -> FeedId {
    FeedId([n; 32])
}

const GRACE: Duration = Duration::from_millis(400);

#[test]
fn the_first_peer_is_the_default_source() {
    let mut s = Sources::new(GRACE);
    assert_eq!(s.connect(f(1)), (true, vec![]));
    assert_eq!(s.connect(f(2)), (false, vec![]));
    assert_eq!(s.source_of(&f(9)), Some(f(1)));
}

#[test]
fn a_duplicate_from_another_peer_turns_it_to_notes() {
    let mut s = Sources::new(GRACE);
    s.connect(f(1));
    s.connect(f(2));
    // f(2) was asked to push feed 9 and delivered it first.
    assert_eq!(s.delivered(f(2), f(9), true, true, 1, Instant::now()), None);
    assert_eq!(s.source_of(&f(9)), Some(f(2)));
    assert_eq!(
        s.delivered(f(1), f(9), true, false, 1, Instant::now()),
        Some(ModeChange {
            peer: f(1),
            reset: None,
            feeds: vec![(f(9), false)]
        })
    );
    // The source's own duplicates (a race) change nothing.
    assert_eq!(
        s.delivered(f(2), f(9), true, false, 1, Instant::now()),
        None
    );
    // A reconnecting peer learns its modes in one short packet.
    assert_eq!(s.modes_for(f(1)), (true, vec![(f(9), false)]));
    assert_eq!(s.modes_for(f(2)), (false, vec![(f(9), true)]));
}

#[test]
fn a_disconnected_source_falls_back_to_the_default() {
    let mut s = Sources::new(GRACE);
    s.connect(f(1));
    s.connect(f(2));
    s.delivered(f(2), f(9), true, true, 1, Instant::now());
    s.delivered(f(1), f(9), true, false, 1, Instant::now());
    assert_eq!(
        s.disconnect(f(2)),
        vec![ModeChange {
            peer: f(1),
            reset: None,
            feeds: vec![(f(9), true)]
        }]
    );
    assert_eq!(s.source_of(&f(9)), Some(f(1)));
    assert_eq!(s.disconnect(f(2)), vec![], "only once");
}

#[test]
fn a_disconnected_default_hands_over_to_the_next_peer() {
    let mut s = Sources::new(GRACE);
    s.connect(f(1));
    s.connect(f(2));
    s.connect(f(3));
    s.delivered(f(3), f(9), true, true, 1, Instant::now());
    assert_eq!(
        s.disconnect(f(1)),
        vec![ModeChange {
            peer: f(2),
            reset: Some(true),
            feeds: vec![(f(9), false)]
        }]
    );
    assert_eq!(s.source_of(&f(8)), Some(f(2)));
    assert_eq!(s.source_of(&f(9)), Some(f(3)));
    s.disconnect(f(2));
    s.disconnect(f(3));
    assert_eq!(s.source_of(&f(9)), None);
}

#[test]
fn a_source_that_falls_behind_is_replaced_after_the_grace_time() {
    let t0 = Instant::now();
    let mut s = Sources::new(GRACE);
    s.connect(f(1));
    s.connect(f(2));
    s.connect(f(3));
    s.delivered(f(1), f(9), true, true, 3, Instant::now());
    // Two peers note more than the source brought.
    assert_eq!(s.noted(f(2), f(9), 5, 3, t0), None);
    assert_eq!(s.noted(f(3), f(9), 4, 3, t0 + GRACE / 2), None);
    let head = |_: &FeedId| 3;
    assert_eq!(s.poll(t0 + GRACE / 2, head), vec![]);
    let asked = s.poll(t0 + GRACE, head);
    assert_eq!(
        asked,
        vec![ModeChange {
            peer: f(2),
            reset: None,
            feeds: vec![(f(9), true)]
        }]
    );
    assert_eq!(s.source_of(&f(9)), Some(f(2)));
    // f(2) does not deliver either: f(3) gets a turn, a grace later.
    assert_eq!(s.poll(t0 + GRACE + GRACE / 2, head), vec![]);
    assert_eq!(s.poll(t0 + GRACE * 2, head)[0].peer, f(3));
    // Once held, nothing more is asked.
    s.noted(f(2), f(9), 6, 3, t0 + GRACE * 2);
    assert_eq!(s.poll(t0 + GRACE * 9, |_| 6), vec![]);
    assert_eq!(s.lagging(), 0);
}

#[test]
fn the_grace_time_stretches_on_a_busy_node() {
    let t0 = Instant::now();
    let mut s = Sources::new(GRACE);
    s.connect(f(1));
    s.connect(f(2));
    s.delivered(f(1), f(9), true, true, 1, t0);
    assert_eq!(s.grace(t0), GRACE);
    // Deliveries keep coming 2 s after the notes: the source is slow
    // because everything is, not because it stalled.
    for seq in 2..40u64 {
        let t = t0 + Duration::from_secs(seq);
        s.noted(f(2), f(9), seq, seq - 1, t);
        s.delivered(f(1), f(9), true, true, seq, t + Duration::from_secs(2));
    }
    let t = t0 + Duration::from_secs(42);
    assert!(s.grace(t) >= Duration::from_secs(5), "{:?}", s.grace(t));
    assert!(s.grace(t) <= GRACE * MAX_GRACE_FACTOR);
    // Quiet again: the stretch wears off.
    assert_eq!(s.grace(t + DELAY_HALF_LIFE * 10), GRACE);
}

#[test]
fn a_delivery_in_time_cancels_the_switch() {
    let t0 = Instant::now();
    let mut s = Sources::new(GRACE);
    s.connect(f(1));
    s.connect(f(2));
    s.delivered(f(1), f(9), true, true, 3, Instant::now());
    s.noted(f(2), f(9), 4, 3, t0);
    s.delivered(f(1), f(9), true, true, 4, Instant::now());
    assert_eq!(s.lagging(), 0);
    assert_eq!(s.poll(t0 + GRACE * 2, |_| 4), vec![]);
    // A source that keeps delivering, however far behind, is kept.
    let t1 = t0 + GRACE * 3;
    s.noted(f(2), f(9), 9, 4, t1);
    s.delivered(f(1), f(9), true, true, 5, t1 + GRACE / 2);
    s.delivered(f(1), f(9), true, true, 6, t1 + GRACE);
    assert_eq!(s.poll(t1 + GRACE + GRACE / 2, |_| 6), vec![]);
    // It stops: the peer that is ahead gets the feed.
    let later = t1 + GRACE + s.grace(t1 + GRACE);
    assert_eq!(s.poll(later, |_| 6)[0].peer, f(2));
}

#[test]
fn an_unknown_feed_noted_ahead_is_asked_for_at_once() {
    let t0 = Instant::now();
    let mut s = Sources::new(GRACE);
    s.connect(f(1));
    s.connect(f(2));
    s.connect(f(3));
    // The default source noted it (it is pushing it): wait for it.
    assert_eq!(s.noted(f(1), f(8), 2, 0, t0), None);
    assert_eq!(s.noted(f(2), f(8), 2, 0, t0), None);
    // Nobody known pushes feed 9: ask the first peer that has it.
    assert_eq!(
        s.noted(f(2), f(9), 1, 0, t0),
        Some(ModeChange {
            peer: f(2),
            reset: None,
            feeds: vec![(f(9), true)]
        })
    );
    assert_eq!(s.noted(f(3), f(9), 1, 0, t0), None, "asked already");
}
