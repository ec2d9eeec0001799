//! Per-resource watch state: whether the API serves the resource, whether its cache has synced,
//! and when the view last heard from the API server about it. Lock-free reads for lookups.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Whether the API server serves a resource (its CRD is installed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// Not known yet (discovery has not answered).
    Undetermined,
    Yes,
    No,
}

/// What a lookup may conclude from a resource's cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The cache has not synced, or the resource is not served: nothing can be concluded.
    Unknown,
    /// Synced, but the API server has not been heard from within the staleness window, its
    /// last request failed, or a relist is under way: what is cached is still present, what is
    /// missing is unknown.
    Stale,
    /// Synced and in contact: a missing object is absent.
    Fresh,
}

#[derive(Debug)]
pub struct Health {
    served: AtomicU8,
    synced: AtomicBool,
    /// The last request failed and none has succeeded since: events may be missed right now.
    erroring: AtomicBool,
    /// A relist (after the watch fell too far behind) has begun and not completed: the cache
    /// has missed events.
    relisting: AtomicBool,
    /// Milliseconds since `epoch` plus one; 0 means never.
    last_contact: AtomicU64,
    epoch: Instant,
    /// The last failed request's error, kept after recovery so a degraded resource can say why
    /// (403 from trimmed RBAC, 5xx, connection refused).
    last_error: Mutex<Option<String>>,
    /// Not synced within the sync timeout; cleared when it syncs.
    degraded: AtomicBool,
}

impl Health {
    pub fn new(served: Served) -> Health {
        let h = Health {
            served: AtomicU8::new(0),
            synced: AtomicBool::new(false),
            erroring: AtomicBool::new(false),
            relisting: AtomicBool::new(false),
            last_contact: AtomicU64::new(0),
            epoch: Instant::now(),
            last_error: Mutex::new(None),
            degraded: AtomicBool::new(false),
        };
        h.set_served(served);
        h
    }

    pub fn served(&self) -> Served {
        match self.served.load(Ordering::Acquire) {
            1 => Served::Yes,
            2 => Served::No,
            _ => Served::Undetermined,
        }
    }

    pub fn set_served(&self, served: Served) {
        let v = match served {
            Served::Undetermined => 0,
            Served::Yes => 1,
            Served::No => 2,
        };
        self.served.store(v, Ordering::Release);
    }

    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// Returns whether this ended a degraded state.
    pub fn set_synced(&self, synced: bool) -> bool {
        self.synced.store(synced, Ordering::Release);
        synced && self.degraded.swap(false, Ordering::AcqRel)
    }

    pub fn degraded(&self) -> bool {
        self.degraded.load(Ordering::Acquire)
    }

    /// Marks an unsynced resource degraded; returns false if it has synced meanwhile.
    pub fn degrade(&self) -> bool {
        self.degraded.store(true, Ordering::Release);
        if self.synced() {
            // Synced between the caller's check and now: set_synced may have missed the flag.
            self.degraded.store(false, Ordering::Release);
            return false;
        }
        true
    }

    /// A request for this resource failed (the watcher retries with backoff).
    pub fn set_erroring(&self) {
        self.erroring.store(true, Ordering::Release);
    }

    /// [`Health::set_erroring`], remembering why.
    pub fn failed(&self, error: &dyn std::fmt::Display) {
        let text = crate::rules::truncate(&error.to_string(), 300);
        *self.last_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(text);
        self.set_erroring();
    }

    /// The last request error, if any request ever failed.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub fn set_relisting(&self, relisting: bool) {
        self.relisting.store(relisting, Ordering::Release);
    }

    /// A successful response, watch event, relist or bookmark for this resource; it ends an
    /// error streak.
    pub fn touch(&self) {
        self.touch_at(self.epoch.elapsed());
    }

    /// [`Health::touch`] at `at` after this state was made (time is an input, so the tests
    /// can set it).
    fn touch_at(&self, at: Duration) {
        self.erroring.store(false, Ordering::Release);
        let ms = u64::try_from(at.as_millis()).unwrap_or(u64::MAX - 1);
        self.last_contact.store(ms.saturating_add(1), Ordering::Release);
    }

    /// Time from the last contact to `now`; `None` if there never was one.
    fn since_contact_at(&self, now: Duration) -> Option<Duration> {
        match self.last_contact.load(Ordering::Acquire) {
            0 => None,
            v => {
                let at = Duration::from_millis(v - 1);
                Some(now.saturating_sub(at))
            }
        }
    }

    pub fn answer(&self, staleness: Duration) -> Answer {
        self.answer_at(staleness, self.epoch.elapsed())
    }

    fn answer_at(&self, staleness: Duration, now: Duration) -> Answer {
        if self.served() != Served::Yes || !self.synced() {
            return Answer::Unknown;
        }
        if self.erroring.load(Ordering::Acquire) || self.relisting.load(Ordering::Acquire) {
            return Answer::Stale;
        }
        match self.since_contact_at(now) {
            Some(d) if d <= staleness => Answer::Fresh,
            _ => Answer::Stale,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn only_a_served_synced_and_recently_contacted_resource_is_fresh() {
        let h = Health::new(Served::Undetermined);
        let window = secs(60);
        assert_eq!(h.answer_at(window, secs(10)), Answer::Unknown);
        h.set_served(Served::Yes);
        h.touch_at(secs(10));
        assert_eq!(h.answer_at(window, secs(10)), Answer::Unknown, "not synced yet");
        h.set_synced(true);
        assert_eq!(h.answer_at(window, secs(10)), Answer::Fresh);
        assert_eq!(h.since_contact_at(secs(70)), Some(secs(60)));
        assert_eq!(
            h.answer_at(window, secs(70)),
            Answer::Fresh,
            "contact exactly a window ago"
        );
        assert_eq!(
            h.answer_at(window, secs(70) + Duration::from_millis(1)),
            Answer::Stale,
            "no contact within the window"
        );
        h.touch_at(secs(100));
        assert_eq!(h.answer_at(window, secs(100)), Answer::Fresh, "contact again");
        h.set_served(Served::No);
        assert_eq!(h.answer_at(window, secs(100)), Answer::Unknown);
    }

    #[test]
    fn a_failed_request_or_a_relist_is_stale_until_the_next_success() {
        let h = Health::new(Served::Yes);
        let (window, now) = (secs(60), secs(10));
        h.set_synced(true);
        h.touch_at(now);
        h.set_erroring();
        assert_eq!(
            h.answer_at(window, now),
            Answer::Stale,
            "recent contact, but the watch is failing"
        );
        h.touch_at(now);
        assert_eq!(h.answer_at(window, now), Answer::Fresh);
        h.set_relisting(true);
        h.touch_at(now);
        assert_eq!(
            h.answer_at(window, now),
            Answer::Stale,
            "a relist has missed events until it completes"
        );
        h.set_relisting(false);
        assert_eq!(h.answer_at(window, now), Answer::Fresh);
    }

    #[test]
    fn never_contacted_is_stale_once_synced() {
        let h = Health::new(Served::Yes);
        h.set_synced(true);
        assert_eq!(h.answer(Duration::from_secs(60)), Answer::Stale);
    }
}
