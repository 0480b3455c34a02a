//! The default `as_of`: the newest event time the store has seen, cached briefly so a lookup
//! costs one store round trip, not two.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicI64, Ordering},
    },
    time::{Duration, Instant},
};

/// How stale the cached clock may be before a lookup reads it again. Events accepted by this
/// process advance it at once; events accepted by other API processes show within this time.
pub const CLOCK_REFRESH: Duration = Duration::from_millis(100);

/// The newest event time seen (ms), shared by ingestion (which advances it) and lookups.
#[derive(Debug)]
pub struct EventClock {
    newest_ms: AtomicI64,
    read_at: Mutex<Option<Instant>>,
}

impl Default for EventClock {
    fn default() -> Self {
        Self {
            newest_ms: AtomicI64::new(i64::MIN),
            read_at: Mutex::new(None),
        }
    }
}

impl EventClock {
    /// Records events accepted by this process.
    pub fn advance(&self, time_ms: i64) {
        self.newest_ms.fetch_max(time_ms, Ordering::Relaxed);
    }

    /// The cached value when it was read from the store less than [`CLOCK_REFRESH`] ago.
    pub fn fresh(&self) -> Option<i64> {
        let read_at = (*self.read_at.lock().ok()?)?;
        let value = self.newest_ms.load(Ordering::Relaxed);
        (read_at.elapsed() < CLOCK_REFRESH && value != i64::MIN).then_some(value)
    }

    /// Stores a value just read from the store (never moving the clock back).
    pub fn refreshed(&self, store_ms: Option<i64>) -> Option<i64> {
        if let Some(ms) = store_ms {
            self.advance(ms);
        }
        if let Ok(mut read_at) = self.read_at.lock() {
            *read_at = Some(Instant::now());
        }
        let value = self.newest_ms.load(Ordering::Relaxed);
        (value != i64::MIN).then_some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_only_moves_forward_and_expires() {
        let clock = EventClock::default();
        assert_eq!(clock.fresh(), None);
        assert_eq!(clock.refreshed(Some(10)), Some(10));
        clock.advance(5);
        assert_eq!(clock.fresh(), Some(10));
        clock.advance(20);
        assert_eq!(clock.refreshed(Some(15)), Some(20));
        std::thread::sleep(CLOCK_REFRESH);
        assert_eq!(clock.fresh(), None);
    }
}
