//! What lookups know of an entity — its hash, its window totals (what its tiles add up to) and
//! its distinct counts — kept in memory while it cannot have changed.
//!
//! Key decision: validity is checked, never assumed. The ingest script gives every entity it
//! changes a new version ([`EntityState::version`], never handed out twice), and a plan's tiles
//! and distinct ranges depend on `as_of` only through [`ReadPlan::key`]. An entity whose cached
//! entry has the plan key asked then costs a lookup the read of its version alone instead of its
//! whole hash and dozens of tiles. Evaluation stays exact at every `as_of` (`max_age` and
//! retention are judged at the instant asked): an entry keeps only the features of the last
//! `as_of` it was evaluated at, and evaluates again at another. The version is read before the
//! hash, tiles and distinct sets, so an entry may hold content newer than its version but never
//! older: it then fails the check on the next read, which sees the newer version.
//!
//! [`EntityState::version`]: larder_domain::EntityState::version
//! [`ReadPlan::key`]: larder_domain::ReadPlan::key

use std::{
    collections::HashMap,
    mem,
    sync::{Arc, Mutex, PoisonError},
};

use larder_domain::{EntityState, FeatureValue, FeatureView, WindowTotals};

/// What one full read found of an entity at one plan key and version: its hash and distinct
/// counts (`state`, without tiles) and the window totals of its tiles.
#[derive(Debug)]
pub struct CachedEntity {
    pub version: String,
    pub plan_key: [i64; 2],
    state: EntityState,
    totals: WindowTotals,
    /// The features evaluated at the last `as_of` asked. Evaluation depends on nothing else, and
    /// lookups without `as_of` share one (the store's clock) until an event moves it.
    evaluated: Mutex<Option<(i64, Arc<[FeatureValue]>)>>,
}

impl CachedEntity {
    pub fn new(
        version: String,
        plan_key: [i64; 2],
        state: EntityState,
        totals: WindowTotals,
    ) -> Self {
        Self {
            version,
            plan_key,
            state,
            totals,
            evaluated: Mutex::default(),
        }
    }

    /// Every feature of `view` (the view the entity was read for) at `as_of`, evaluated once
    /// per `as_of`.
    pub fn evaluate(&self, view: &FeatureView, as_of_ms: i64) -> Arc<[FeatureValue]> {
        let mut evaluated = self
            .evaluated
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((at, values)) = &*evaluated
            && *at == as_of_ms
        {
            return Arc::clone(values);
        }
        let values: Arc<[FeatureValue]> = view
            .evaluate_with_totals(&self.state, &self.totals, as_of_ms)
            .into();
        *evaluated = Some((as_of_ms, Arc::clone(&values)));
        values
    }
}

/// Per view, at most `capacity` entities, evicted by CLOCK: reading an entry marks it; to make
/// room, a hand sweeps the entries, unmarking the marked ones, and replaces the first it finds
/// unmarked. What is looked up often stays, and every entity stays while they all fit.
pub struct EntityCache {
    views: HashMap<String, Mutex<Clock>>,
    capacity: usize,
}

#[derive(Default)]
struct Clock {
    slots: Vec<Slot>,
    /// Entity key → its slot.
    index: HashMap<Arc<str>, usize>,
    hand: usize,
}

struct Slot {
    key: Arc<str>,
    entity: Arc<CachedEntity>,
    read_since_swept: bool,
}

impl EntityCache {
    /// A cache for `views` keeping at most `entities_per_view` entities of each (0: none).
    pub fn new(views: impl IntoIterator<Item = String>, entities_per_view: usize) -> Self {
        Self {
            views: views
                .into_iter()
                .map(|view| (view, Mutex::default()))
                .collect(),
            capacity: entities_per_view,
        }
    }

    pub fn get(&self, view: &str, key: &str) -> Option<Arc<CachedEntity>> {
        let mut clock = self.lock(view)?;
        let index = *clock.index.get(key)?;
        let slot = &mut clock.slots[index];
        slot.read_since_swept = true;
        Some(Arc::clone(&slot.entity))
    }

    pub fn insert(&self, view: &str, key: &str, entity: Arc<CachedEntity>) {
        if self.capacity == 0 {
            return;
        }
        if let Some(mut clock) = self.lock(view) {
            clock.insert(key, entity, self.capacity);
        }
    }

    fn lock(&self, view: &str) -> Option<std::sync::MutexGuard<'_, Clock>> {
        let clock = self.views.get(view)?;
        Some(clock.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Clock {
    fn insert(&mut self, key: &str, entity: Arc<CachedEntity>, capacity: usize) {
        if let Some(&index) = self.index.get(key) {
            self.slots[index].entity = entity;
            return;
        }
        let key: Arc<str> = key.into();
        let slot = Slot {
            key: Arc::clone(&key),
            entity,
            read_since_swept: false,
        };
        if self.slots.len() < capacity {
            self.index.insert(key, self.slots.len());
            self.slots.push(slot);
            return;
        }
        while mem::take(&mut self.slots[self.hand].read_since_swept) {
            self.hand = (self.hand + 1) % self.slots.len();
        }
        let evicted = mem::replace(&mut self.slots[self.hand], slot);
        self.index.remove(&evicted.key);
        self.index.insert(key, self.hand);
        self.hand = (self.hand + 1) % self.slots.len();
    }
}

#[cfg(test)]
mod tests {
    use larder_domain::ValueStatus;

    use super::*;

    fn entity(version: &str) -> CachedEntity {
        CachedEntity::new(
            version.to_owned(),
            [1, 2],
            EntityState::default(),
            WindowTotals::default(),
        )
    }

    fn version(cache: &EntityCache, view: &str, key: &str) -> Option<String> {
        cache.get(view, key).map(|e| e.version.clone())
    }

    #[test]
    fn an_entry_is_found_until_replaced() {
        let cache = EntityCache::new(["restaurant".to_owned()], 10);
        assert_eq!(version(&cache, "restaurant", "r1"), None);
        cache.insert("restaurant", "r1", Arc::new(entity("5")));
        assert_eq!(version(&cache, "restaurant", "r1").as_deref(), Some("5"));
        cache.insert("restaurant", "r1", Arc::new(entity("6")));
        assert_eq!(version(&cache, "restaurant", "r1").as_deref(), Some("6"));
        assert_eq!(version(&cache, "consumer", "r1"), None, "views are apart");
    }

    #[test]
    fn it_keeps_at_most_its_capacity_and_what_is_read_often() {
        let cache = EntityCache::new(["v".to_owned()], 4);
        cache.insert("v", "hot", Arc::new(entity("1")));
        for i in 0..100 {
            cache.insert("v", &format!("k{i}"), Arc::new(entity("1")));
            assert!(cache.get("v", "hot").is_some(), "after {i} inserts");
        }
        assert!(cache.get("v", "k0").is_none());
        assert!(cache.get("v", "k99").is_some());
        let clock = cache.lock("v").unwrap();
        assert_eq!((clock.slots.len(), clock.index.len()), (4, 4));
    }

    #[test]
    fn every_entity_stays_while_they_all_fit() {
        let cache = EntityCache::new(["v".to_owned()], 10);
        let keys: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
        for key in &keys {
            cache.insert("v", key, Arc::new(entity("1")));
        }
        for round in 0..3 {
            for key in keys.iter().rev() {
                assert!(cache.get("v", key).is_some(), "{key}, round {round}");
                cache.insert("v", key, Arc::new(entity("2")));
            }
        }
    }

    #[test]
    fn an_entity_is_evaluated_once_per_as_of_and_again_at_another() {
        let config = serde_json::json!({"view": [{
            "name": "restaurant", "key": "merchant_id", "max_age": "1h",
            "sources": {"restaurant": "id"},
            "feature": [{"name": "avg_ticket", "agg": "last", "source": "restaurant",
                         "field": "average_ticket"}]
        }]});
        let views =
            larder_domain::FeatureViews::from_config(serde_json::from_value(config).unwrap())
                .unwrap();
        let view = views.view("restaurant").unwrap();
        let at = 1_548_000_000_000_i64;
        let fields =
            [("_t", at), ("_t:avg_ticket", at)].map(|(f, t)| (f.to_owned(), t.to_string()));
        let mut state = EntityState::default();
        state.fields.extend(fields);
        state.fields.insert("avg_ticket".into(), "60.5".into());
        let entity = CachedEntity::new("1".into(), [0, 0], state, WindowTotals::default());

        let at_max_age = entity.evaluate(view, at + 3_600_000);
        assert_eq!(at_max_age[0].status, ValueStatus::Present);
        assert!(Arc::ptr_eq(
            &at_max_age,
            &entity.evaluate(view, at + 3_600_000)
        ));
        let past_it = entity.evaluate(view, at + 3_600_001);
        assert_eq!(past_it[0].status, ValueStatus::OutsideMaxAge);
        assert_eq!(
            entity.evaluate(view, at + 3_600_000)[0].value,
            serde_json::json!(60.5)
        );
    }

    #[test]
    fn a_cache_of_no_entities_keeps_nothing() {
        let cache = EntityCache::new(["v".to_owned()], 0);
        cache.insert("v", "k", Arc::new(entity("1")));
        assert_eq!(version(&cache, "v", "k"), None);
    }
}
