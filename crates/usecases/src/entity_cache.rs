//! What lookups read of an entity besides its hash — its window totals (what its tiles add up to)
//! and distinct counts — kept in memory while it cannot have changed.
//!
//! Key decision: validity is checked, never assumed. The ingest script gives every entity it
//! changes a new version ([`field::VERSION`] in its hash, never handed out twice), and a plan's
//! tiles and distinct ranges depend on `as_of` only through [`ReadPlan::key`]. An entity whose
//! cached entry has the plan key asked then costs a lookup one hash read — the hash it reads
//! anyway — instead of dozens of tiles; evaluation still runs on every lookup, so `last` values,
//! `max_age` and retention come from the fresh hash. An entry is only written from a read that
//! fetched the hash before the tiles, so it may hold totals newer than its version but never
//! older: it then fails the check on the next read, which sees the newer version.
//!
//! [`field::VERSION`]: larder_domain::field::VERSION
//! [`ReadPlan::key`]: larder_domain::ReadPlan::key

use std::{
    collections::HashMap,
    mem,
    sync::{Arc, Mutex, PoisonError},
};

use larder_domain::WindowTotals;

/// The window totals and distinct counts one read found for an entity at one plan key and
/// version.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedWindows {
    pub version: String,
    pub plan_key: [i64; 2],
    pub totals: WindowTotals,
    pub distinct: Vec<u64>,
}

/// Per view, at most `2 × per_generation` entities, in two generations: entries go to the
/// young map; when it fills it becomes the old one and the previous old one is dropped; an entry
/// found in the old map moves back to the young one. What is looked up often stays, with no
/// per-entry bookkeeping.
pub struct WindowCache {
    views: HashMap<String, Mutex<Generations>>,
    per_generation: usize,
}

#[derive(Default)]
struct Generations {
    young: HashMap<String, Arc<CachedWindows>>,
    old: HashMap<String, Arc<CachedWindows>>,
}

impl WindowCache {
    /// A cache for `views` keeping about `entities_per_view` entities of each (0: keeps none).
    pub fn new(views: impl IntoIterator<Item = String>, entities_per_view: usize) -> Self {
        Self {
            views: views
                .into_iter()
                .map(|view| (view, Mutex::default()))
                .collect(),
            per_generation: entities_per_view.div_ceil(2),
        }
    }

    pub fn get(&self, view: &str, key: &str) -> Option<Arc<CachedWindows>> {
        let mut generations = self.lock(view)?;
        if let Some(found) = generations.young.get(key) {
            return Some(Arc::clone(found));
        }
        let found = generations.old.remove(key)?;
        generations.promote(key.to_owned(), Arc::clone(&found), self.per_generation);
        Some(found)
    }

    pub fn insert(&self, view: &str, key: &str, windows: Arc<CachedWindows>) {
        if self.per_generation == 0 {
            return;
        }
        if let Some(mut generations) = self.lock(view) {
            generations.old.remove(key);
            generations.promote(key.to_owned(), windows, self.per_generation);
        }
    }

    fn lock(&self, view: &str) -> Option<std::sync::MutexGuard<'_, Generations>> {
        let generations = self.views.get(view)?;
        Some(generations.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Generations {
    fn promote(&mut self, key: String, windows: Arc<CachedWindows>, per_generation: usize) {
        if self.young.len() >= per_generation && !self.young.contains_key(&key) {
            self.old = mem::take(&mut self.young);
        }
        self.young.insert(key, windows);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(version: &str) -> CachedWindows {
        CachedWindows {
            version: version.to_owned(),
            plan_key: [1, 2],
            totals: WindowTotals::default(),
            distinct: vec![3],
        }
    }

    #[test]
    fn an_entry_is_found_until_replaced() {
        let cache = WindowCache::new(["restaurant".to_owned()], 10);
        assert_eq!(cache.get("restaurant", "r1"), None);
        cache.insert("restaurant", "r1", Arc::new(windows("5")));
        assert_eq!(cache.get("restaurant", "r1").unwrap().version, "5");
        cache.insert("restaurant", "r1", Arc::new(windows("6")));
        assert_eq!(cache.get("restaurant", "r1").unwrap().version, "6");
        assert_eq!(cache.get("consumer", "r1"), None, "views are apart");
    }

    #[test]
    fn it_keeps_at_most_two_generations_and_what_is_read_often() {
        let cache = WindowCache::new(["v".to_owned()], 4);
        cache.insert("v", "hot", Arc::new(windows("1")));
        for i in 0..100 {
            cache.insert("v", &format!("k{i}"), Arc::new(windows("1")));
            assert!(cache.get("v", "hot").is_some(), "after {i} inserts");
        }
        assert!(cache.get("v", "k0").is_none());
        let generations = cache.lock("v").unwrap();
        assert!(generations.young.len() + generations.old.len() <= 4);
    }

    #[test]
    fn a_cache_of_no_entities_keeps_nothing() {
        let cache = WindowCache::new(["v".to_owned()], 0);
        cache.insert("v", "k", Arc::new(windows("1")));
        assert_eq!(cache.get("v", "k"), None);
    }
}
