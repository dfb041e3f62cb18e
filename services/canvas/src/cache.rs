//! A brief per-entry memory of what is slow to learn (an entry's display id, its linked
//! packages), so paging through a package and going back to it does not ask Benchling or
//! Athena again each time.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use bw_contracts::EntryId;

/// Entries remembered at most; past this, expired ones are dropped, then everything.
const CAPACITY: usize = 10_000;

/// Values by entry, each kept for a fixed time.
#[derive(Debug)]
pub struct EntryCache<V> {
    ttl: Duration,
    values: Mutex<HashMap<EntryId, (Instant, V)>>,
}

impl<V: Clone> EntryCache<V> {
    /// A cache keeping values for `ttl` (zero keeps nothing).
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            values: Mutex::default(),
        }
    }

    /// The entry's value, if stored less than the time-to-live ago.
    pub fn get(&self, entry: &EntryId) -> Option<V> {
        let values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        values
            .get(entry)
            .filter(|(stored, _)| stored.elapsed() < self.ttl)
            .map(|(_, value)| value.clone())
    }

    /// Remembers the entry's value.
    pub fn put(&self, entry: &EntryId, value: V) {
        if self.ttl.is_zero() {
            return;
        }
        let mut values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        if values.len() >= CAPACITY {
            values.retain(|_, (stored, _)| stored.elapsed() < self.ttl);
            if values.len() >= CAPACITY {
                values.clear();
            }
        }
        values.insert(entry.clone(), (Instant::now(), value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_expire_and_a_zero_ttl_keeps_nothing() {
        let entry = EntryId::parse("etr_1").unwrap();
        let cache = EntryCache::new(Duration::from_millis(50));
        assert_eq!(cache.get(&entry), None);
        cache.put(&entry, 7);
        assert_eq!(cache.get(&entry), Some(7));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get(&entry), None);
        let off = EntryCache::new(Duration::ZERO);
        off.put(&entry, 7);
        assert_eq!(off.get(&entry), None);
    }

    #[test]
    fn a_full_cache_makes_room() {
        let cache = EntryCache::new(Duration::from_secs(60));
        for i in 0..=CAPACITY {
            cache.put(&EntryId::parse(format!("etr_{i}")).unwrap(), i);
        }
        let last = EntryId::parse(format!("etr_{CAPACITY}")).unwrap();
        assert_eq!(cache.get(&last), Some(CAPACITY));
        assert!(cache.values.lock().unwrap().len() <= CAPACITY);
    }
}
