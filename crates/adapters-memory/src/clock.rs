//! A clock a test sets by hand, so time-dependent rules (expiries, lifetimes) are shown
//! without sleeping.

use std::sync::Mutex;
use std::time::Duration;

use ports::Clock;
use time::OffsetDateTime;

/// A clock that stands still until told otherwise. Share it (`Arc<ManualClock>`) between
/// the test and [`crate::MemoryStore::with_clock`].
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<OffsetDateTime>,
}

impl ManualClock {
    /// A clock showing `start`.
    #[must_use]
    pub fn new(start: OffsetDateTime) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// A clock showing the current wall-clock time, from which a test moves on.
    #[must_use]
    pub fn starting_now() -> Self {
        Self::new(OffsetDateTime::now_utc())
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        if let Ok(mut now) = self.now.lock() {
            *now += by;
        }
    }

    /// Sets the clock to `at` (backwards too).
    pub fn set(&self, at: OffsetDateTime) {
        if let Ok(mut now) = self.now.lock() {
            *now = at;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        // A poisoned lock still holds the last time set.
        match self.now.lock() {
            Ok(now) => *now,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }
}
