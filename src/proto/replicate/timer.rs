//! A link's timers as data (as quinn-proto keeps a connection's): one
//! deadline per kind of [`Timer`], set and stopped by the link, and the
//! earliest of them handed to the driver. Time is always an input.

use std::time::Instant;

/// What a link's deadlines are for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Timer {
    /// Nothing arrived from the peer for the idle time: the link is dead.
    Idle,
    /// Check whether a keepalive is due.
    KeepAlive,
    /// Held-back notes may go out (stopped: they may go at once).
    Notes,
    /// Ask the node's sources for feeds past their grace time.
    SourceCheck,
    /// The next check of the catch-up's progress (stopped once caught up).
    Progress,
}

impl Timer {
    /// How many kinds of timer there are.
    pub(super) const COUNT: usize = 5;
}

// The table has a slot for every timer: the last one is at `COUNT - 1`.
const _: () = assert!(Timer::Progress as usize + 1 == Timer::COUNT);

/// A deadline per [`Timer`], or none when it is stopped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct TimerTable {
    data: [Option<Instant>; Timer::COUNT],
}

impl TimerTable {
    /// Sets `timer` to expire at `time`.
    pub(super) fn set(&mut self, timer: Timer, time: Instant) {
        self.data[timer as usize] = Some(time);
    }

    /// Stops `timer`.
    pub(super) fn stop(&mut self, timer: Timer) {
        self.data[timer as usize] = None;
    }

    /// When `timer` expires, if it runs.
    pub(super) fn get(&self, timer: Timer) -> Option<Instant> {
        self.data[timer as usize]
    }

    /// The earliest deadline of all running timers.
    pub(super) fn next_timeout(&self) -> Option<Instant> {
        self.data.iter().flatten().min().copied()
    }

    /// `timer` runs and its deadline is at or before `now`.
    pub(super) fn is_expired(&self, timer: Timer, now: Instant) -> bool {
        self.get(timer).is_some_and(|at| at <= now)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_next_timeout_is_the_earliest_running_timer() {
        let t0 = Instant::now();
        let mut timers = TimerTable::default();
        assert_eq!(timers.next_timeout(), None);
        timers.set(Timer::Idle, t0 + Duration::from_secs(60));
        timers.set(Timer::Notes, t0 + Duration::from_secs(1));
        assert_eq!(timers.next_timeout(), Some(t0 + Duration::from_secs(1)));
        timers.stop(Timer::Notes);
        assert_eq!(timers.get(Timer::Notes), None);
        assert_eq!(timers.next_timeout(), Some(t0 + Duration::from_secs(60)));
    }

    #[test]
    fn a_timer_expires_at_its_deadline_and_a_stopped_one_never() {
        let t0 = Instant::now();
        let mut timers = TimerTable::default();
        assert!(!timers.is_expired(Timer::Progress, t0));
        timers.set(Timer::Progress, t0 + Duration::from_secs(1));
        assert!(!timers.is_expired(Timer::Progress, t0));
        assert!(timers.is_expired(Timer::Progress, t0 + Duration::from_secs(1)));
        assert!(!timers.is_expired(Timer::SourceCheck, t0 + Duration::from_secs(9)));
    }
}
