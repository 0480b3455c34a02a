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

/// Per view, at most `2 × per_generation` entities, in two generations: entries go to the
/// young map; when it fills it becomes the old one and the previous old one is dropped; an entry
/// found in the old map moves back to the young one. What is looked up often stays, with no
/// per-entry bookkeeping.
pub struct EntityCache {
    views: HashMap<String, Mutex<Generations>>,
    per_generation: usize,
}

#[derive(Default)]
struct Generations {
    young: HashMap<String, Arc<CachedEntity>>,
    old: HashMap<String, Arc<CachedEntity>>,
}

impl EntityCache {
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

    pub fn get(&self, view: &str, key: &str) -> Option<Arc<CachedEntity>> {
        let mut generations = self.lock(view)?;
        if let Some(found) = generations.young.get(key) {
            return Some(Arc::clone(found));
        }
        let found = generations.old.remove(key)?;
        generations.promote(key.to_owned(), Arc::clone(&found), self.per_generation);
        Some(found)
    }

    pub fn insert(&self, view: &str, key: &str, entity: Arc<CachedEntity>) {
        if self.per_generation == 0 {
            return;
        }
        if let Some(mut generations) = self.lock(view) {
            generations.old.remove(key);
            generations.promote(key.to_owned(), entity, self.per_generation);
        }
    }

    fn lock(&self, view: &str) -> Option<std::sync::MutexGuard<'_, Generations>> {
        let generations = self.views.get(view)?;
        Some(generations.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Generations {
    fn promote(&mut self, key: String, entity: Arc<CachedEntity>, per_generation: usize) {
        if self.young.len() >= per_generation && !self.young.contains_key(&key) {
            self.old = mem::take(&mut self.young);
        }
        self.young.insert(key, entity);
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
    fn it_keeps_at_most_two_generations_and_what_is_read_often() {
        let cache = EntityCache::new(["v".to_owned()], 4);
        cache.insert("v", "hot", Arc::new(entity("1")));
        for i in 0..100 {
            cache.insert("v", &format!("k{i}"), Arc::new(entity("1")));
            assert!(cache.get("v", "hot").is_some(), "after {i} inserts");
        }
        assert!(cache.get("v", "k0").is_none());
        let generations = cache.lock("v").unwrap();
        assert!(generations.young.len() + generations.old.len() <= 4);
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
