//! What the canvas worker remembers between jobs, so paging through a package and going back
//! to it does not repeat slow work: a brief per-entry memory of what Benchling and Athena said
//! (an entry's display id, its linked packages), and the parsed manifests of package revisions.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bw_contracts::EntryId;

use bw_registry::Manifest;

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

/// Parsed manifests by bucket and top hash. A revision's manifest never changes, so one kept
/// here is never stale; the cache holds at most a set number of files in total, dropping the
/// oldest manifests first.
#[derive(Debug)]
pub struct ManifestCache {
    max_files: usize,
    state: Mutex<Manifests>,
}

#[derive(Debug, Default)]
struct Manifests {
    by_revision: HashMap<(String, String), Arc<Manifest>>,
    oldest_first: VecDeque<(String, String)>,
    files: usize,
}

impl ManifestCache {
    /// A cache of at most `max_files` files over all its manifests (zero keeps nothing).
    pub fn new(max_files: usize) -> Self {
        Self {
            max_files,
            state: Mutex::default(),
        }
    }

    /// The manifest of revision `top_hash` in `bucket`, if kept.
    pub fn get(&self, bucket: &str, top_hash: &str) -> Option<Arc<Manifest>> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state
            .by_revision
            .get(&(bucket.to_owned(), top_hash.to_owned()))
            .cloned()
    }

    /// Keeps `manifest` of `bucket`, unless it alone is over the limit.
    pub fn put(&self, bucket: &str, manifest: Arc<Manifest>) {
        let size = manifest.entries.len().max(1);
        if size > self.max_files {
            return;
        }
        let key = (bucket.to_owned(), manifest.top_hash.clone());
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.by_revision.contains_key(&key) {
            return;
        }
        while state.files + size > self.max_files {
            let Some(oldest) = state.oldest_first.pop_front() else {
                break;
            };
            if let Some(dropped) = state.by_revision.remove(&oldest) {
                state.files -= dropped.entries.len().max(1);
            }
        }
        state.files += size;
        state.oldest_first.push_back(key.clone());
        state.by_revision.insert(key, manifest);
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

    fn manifest(top_hash: &str, files: usize) -> Arc<Manifest> {
        Arc::new(Manifest {
            top_hash: top_hash.to_owned(),
            user_meta: serde_json::json!({}),
            message: None,
            entries: (0..files)
                .map(|i| bw_registry::PackageEntry {
                    logical_key: format!("f{i}"),
                    size: 1,
                })
                .collect(),
            entry_json: None,
        })
    }

    #[test]
    fn manifests_are_kept_by_revision_within_the_file_limit() {
        let cache = ManifestCache::new(10);
        cache.put("bucket", manifest("a", 4));
        cache.put("bucket", manifest("b", 4));
        assert!(cache.get("bucket", "a").is_some());
        assert!(cache.get("other", "a").is_none(), "keyed by bucket too");
        // Room for "c" is made by dropping the oldest.
        cache.put("bucket", manifest("c", 4));
        assert!(cache.get("bucket", "a").is_none());
        assert!(cache.get("bucket", "b").is_some() && cache.get("bucket", "c").is_some());
        // A manifest over the limit on its own is not kept, and evicts nothing.
        cache.put("bucket", manifest("huge", 11));
        assert!(cache.get("bucket", "huge").is_none());
        assert!(cache.get("bucket", "b").is_some());
        let off = ManifestCache::new(0);
        off.put("bucket", manifest("a", 1));
        assert!(off.get("bucket", "a").is_none());
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
