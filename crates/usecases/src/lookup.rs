//! Serving feature views: one entity by the original route, many entities × features in one
//! call (Feast's shape), and the catalogue.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, PoisonError},
};

use larder_domain::{
    BATCH_FEATURES, BatchFeature, EntityKey, EntityState, FeatureName, FeatureValue, FeatureView,
    FeatureViews, InvalidName, ReadPlan, SelectError, Timestamp, ValueStatus, typed,
};
use serde_json::{Map, Value};

use crate::{
    EntityRead, EventClock, OnlineStore, StoreError, StoredKeyPage,
    entity_cache::{CachedEntity, EntityCache},
    ports::one_each,
};

#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// A name or key outside the allowed alphabet (it could address another key family).
    #[error(transparent)]
    InvalidName(#[from] InvalidName),
    #[error("unknown feature view or feature `{0}`")]
    UnknownFeature(String),
    #[error("no value for this key")]
    NotFound,
    /// The request is well-formed JSON but asks for something impossible.
    #[error("{0}")]
    InvalidRequest(String),
    #[error("at most {max} entities per request")]
    TooManyEntities { max: usize },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What to look up: `view:feature` references (or whole views), entity keys by key name, and
/// the instant windows end at.
#[derive(Debug, Clone, PartialEq)]
pub struct OnlineRequest {
    pub features: Vec<String>,
    pub entities: BTreeMap<String, Vec<String>>,
    pub as_of: Option<Timestamp>,
}

/// One column of an online answer: an entity key or a feature, one cell per entity row.
#[derive(Debug, Clone, PartialEq)]
pub struct OnlineColumn {
    pub name: String,
    pub values: Vec<Value>,
    pub statuses: Vec<ValueStatus>,
    pub times_ms: Vec<Option<i64>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OnlineAnswer {
    pub as_of_ms: i64,
    pub columns: Vec<OnlineColumn>,
}

/// The largest page of keys `keys` returns, whatever is asked.
pub const MAX_PAGE: usize = 1000;

pub struct LookupService {
    store: Arc<dyn OnlineStore>,
    views: Arc<FeatureViews>,
    clock: Arc<EventClock>,
    max_entities: usize,
    /// Each view's read plan at the last [`ReadPlan::key`] asked: a plan changes at most once a
    /// minute, and building one formats a hundred tile names.
    plans: Mutex<HashMap<String, CachedPlan>>,
    entities: EntityCache,
}

/// A read plan with the [`ReadPlan::key`] it was built for.
type CachedPlan = ([i64; 2], Arc<ReadPlan>);

impl LookupService {
    pub fn new(
        store: Arc<dyn OnlineStore>,
        views: Arc<FeatureViews>,
        clock: Arc<EventClock>,
        max_entities: usize,
        cached_entities_per_view: usize,
    ) -> Self {
        let entities = EntityCache::new(
            views.views().iter().map(|v| v.name.clone()),
            cached_entities_per_view,
        );
        Self {
            store,
            views,
            clock,
            max_entities,
            plans: Mutex::default(),
            entities,
        }
    }

    pub fn views(&self) -> &FeatureViews {
        &self.views
    }

    /// Every feature of `view` for `key` at `as_of` (default: the store's newest event time),
    /// with `id`: the shape of the original `GET /real-time-fs/get/{feature_name}/{key}`.
    ///
    /// # Errors
    /// [`LookupError::InvalidName`], [`LookupError::UnknownFeature`] for an unknown view,
    /// [`LookupError::NotFound`] for an unknown entity, [`LookupError::Store`].
    pub async fn get(
        &self,
        view: &str,
        key: &str,
        as_of: Option<Timestamp>,
    ) -> Result<Map<String, Value>, LookupError> {
        let name = FeatureName::parse(view)?;
        let key = EntityKey::parse(key)?;
        if let Some(batch) = BATCH_FEATURES.iter().find(|b| b.name == name.as_str()) {
            return self.get_batch(batch, key).await;
        }
        let view = self
            .views
            .view(name.as_str())
            .ok_or_else(|| LookupError::UnknownFeature(name.to_string()))?;
        let as_of_ms = self.as_of(as_of).await?;
        let read = EntityRead {
            view: view.name.clone(),
            key: key.clone(),
            plan: self.plan(view, as_of_ms),
            version_only: false,
        };
        let values = self.evaluate(vec![(view, read)], as_of_ms).await?.pop();
        let values = values.flatten().ok_or(LookupError::NotFound)?;
        let mut answer = Map::new();
        answer.insert("id".into(), Value::String(key.to_string()));
        for (feature, value) in view.features.iter().zip(values.iter()) {
            answer.insert(feature.name.clone(), value.value.clone());
        }
        Ok(answer)
    }

    /// A materialized batch feature: its stored fields, typed, with `id`.
    async fn get_batch(
        &self,
        batch: &BatchFeature,
        key: EntityKey,
    ) -> Result<Map<String, Value>, LookupError> {
        let reads = [EntityRead {
            view: batch.name.to_owned(),
            key: key.clone(),
            plan: Arc::default(),
            version_only: false,
        }];
        let state = self.store.read(&reads).await?.pop().unwrap_or_default();
        if state.fields.is_empty() {
            return Err(LookupError::NotFound);
        }
        let mut answer = Map::new();
        answer.insert("id".into(), Value::String(key.to_string()));
        for (field, kind) in batch.fields {
            if let Some(text) = state.fields.get(*field) {
                answer.insert((*field).to_owned(), typed(text, *kind));
            }
        }
        Ok(answer)
    }

    /// Many entities × many features in one store round trip, two when an entity changed since
    /// its window totals were cached (and one more for the clock without `as_of`, when stale).
    ///
    /// # Errors
    /// [`LookupError::UnknownFeature`], [`LookupError::InvalidRequest`] (missing or uneven entity
    /// columns), [`LookupError::InvalidName`] (a bad key), [`LookupError::TooManyEntities`],
    /// [`LookupError::Store`].
    pub async fn online(&self, request: &OnlineRequest) -> Result<OnlineAnswer, LookupError> {
        let selected = self.views.select(&request.features).map_err(|e| match e {
            SelectError::Unknown(reference) => LookupError::UnknownFeature(reference),
            SelectError::Empty => LookupError::InvalidRequest(e.to_string()),
        })?;
        let mut key_columns: Vec<(&str, Vec<EntityKey>)> = Vec::new();
        for (view, _) in &selected {
            if key_columns.iter().any(|(name, _)| *name == view.key) {
                continue;
            }
            let keys = request.entities.get(&view.key).ok_or_else(|| {
                LookupError::InvalidRequest(format!(
                    "entities must include `{}` for view `{}`",
                    view.key, view.name
                ))
            })?;
            let keys = keys
                .iter()
                .map(|k| EntityKey::parse(k))
                .collect::<Result<Vec<_>, _>>()?;
            key_columns.push((view.key.as_str(), keys));
        }
        let rows = key_columns.first().map_or(0, |(_, keys)| keys.len());
        if key_columns.iter().any(|(_, keys)| keys.len() != rows) {
            return Err(LookupError::InvalidRequest(
                "every entity key list must have the same length".into(),
            ));
        }
        if rows > self.max_entities {
            return Err(LookupError::TooManyEntities {
                max: self.max_entities,
            });
        }
        let as_of_ms = self.as_of(request.as_of).await?;

        // One read per (view, row), all in one pipeline; `views` pairs each view with its keys.
        let mut views: Vec<(&FeatureView, &[EntityKey])> = Vec::new();
        for (view, _) in &selected {
            if views.iter().any(|(v, _)| v.name == view.name) {
                continue;
            }
            if let Some((_, keys)) = key_columns.iter().find(|(name, _)| *name == view.key) {
                views.push((view, keys));
            }
        }
        let mut reads = Vec::with_capacity(views.len() * rows);
        for (view, keys) in &views {
            let plan = self.plan(view, as_of_ms);
            for key in *keys {
                let read = EntityRead {
                    view: view.name.clone(),
                    key: key.clone(),
                    plan: Arc::clone(&plan),
                    version_only: false,
                };
                reads.push((*view, read));
            }
        }
        let evaluated: Vec<Arc<[FeatureValue]>> = self
            .evaluate(reads, as_of_ms)
            .await?
            .into_iter()
            .enumerate()
            .map(|(index, values)| {
                let unknown = || {
                    let view = views[index / rows].0;
                    view.evaluate(&EntityState::default(), as_of_ms).into()
                };
                values.unwrap_or_else(unknown)
            })
            .collect();

        let mut columns: Vec<OnlineColumn> = key_columns
            .iter()
            .map(|(name, keys)| OnlineColumn {
                name: (*name).to_owned(),
                values: keys.iter().map(|k| Value::String(k.to_string())).collect(),
                statuses: vec![ValueStatus::Present; rows],
                times_ms: vec![None; rows],
            })
            .collect();
        for (view, feature) in &selected {
            let view_index = views
                .iter()
                .position(|(v, _)| v.name == view.name)
                .unwrap_or_default();
            let cells = (0..rows).map(|row| &evaluated[view_index * rows + row][*feature]);
            let mut column = OnlineColumn {
                name: format!("{}:{}", view.name, view.features[*feature].name),
                values: Vec::with_capacity(rows),
                statuses: Vec::with_capacity(rows),
                times_ms: Vec::with_capacity(rows),
            };
            for cell in cells {
                column.values.push(cell.value.clone());
                column.statuses.push(cell.status);
                column.times_ms.push(cell.time_ms);
            }
            columns.push(column);
        }
        Ok(OnlineAnswer { as_of_ms, columns })
    }

    /// Each view with how many entities it holds.
    ///
    /// # Errors
    /// [`LookupError::Store`].
    pub async fn catalogue(&self) -> Result<Vec<(&FeatureView, u64)>, LookupError> {
        let names: Vec<String> = self.views.views().iter().map(|v| v.name.clone()).collect();
        let counts = self.store.entity_counts(&names).await?;
        Ok(self.views.views().iter().zip(counts).collect())
    }

    /// One page of the keys of `view`'s entities.
    ///
    /// # Errors
    /// [`LookupError::InvalidName`], [`LookupError::UnknownFeature`], [`LookupError::Store`].
    pub async fn keys(
        &self,
        view: &str,
        cursor: u64,
        limit: usize,
    ) -> Result<StoredKeyPage, LookupError> {
        let name = FeatureName::parse(view)?;
        if self.views.view(name.as_str()).is_none() {
            return Err(LookupError::UnknownFeature(name.to_string()));
        }
        Ok(self
            .store
            .scan(&name, cursor, limit.clamp(1, MAX_PAGE))
            .await?)
    }

    /// Every feature of each read's view at `as_of`, one list per read, in order; `None` for an
    /// entity the store does not hold. An entity cached at the plan key asked costs the read of
    /// its version alone; one whose version moved since costs a second round trip.
    async fn evaluate(
        &self,
        reads: Vec<(&FeatureView, EntityRead)>,
        as_of_ms: i64,
    ) -> Result<Vec<Option<Arc<[FeatureValue]>>>, LookupError> {
        let plan_key = ReadPlan::key(as_of_ms);
        let mut cached: Vec<Option<Arc<CachedEntity>>> = reads
            .iter()
            .map(|(_, read)| {
                let entry = self.entities.get(&read.view, read.key.as_str())?;
                (entry.plan_key == plan_key).then_some(entry)
            })
            .collect();
        let first: Vec<EntityRead> = reads
            .iter()
            .zip(&cached)
            .map(|((_, read), cached)| EntityRead {
                version_only: cached.is_some(),
                ..read.clone()
            })
            .collect();
        let mut states = self.read_store(&first).await?;
        let mut stale = Vec::new();
        for (index, (state, entry)) in states.iter().zip(&mut cached).enumerate() {
            if entry
                .as_ref()
                .is_some_and(|e| state.version.as_ref() != Some(&e.version))
            {
                stale.push(index);
                *entry = None;
            }
        }
        if !stale.is_empty() {
            let again: Vec<EntityRead> = stale.iter().map(|&i| reads[i].1.clone()).collect();
            for (index, state) in stale.into_iter().zip(self.read_store(&again).await?) {
                states[index] = state;
            }
        }
        let evaluated = reads.iter().zip(states).zip(cached);
        let evaluated = evaluated.map(|(((view, read), state), entry)| {
            let entry = match entry {
                Some(entry) => entry,
                None if state.fields.is_empty() => return None,
                None => self.remember(view, read, state, as_of_ms, plan_key),
            };
            Some(entry.evaluate(view, as_of_ms))
        });
        Ok(evaluated.collect())
    }

    /// One store round trip, checked to answer one state per read.
    async fn read_store(&self, reads: &[EntityRead]) -> Result<Vec<EntityState>, LookupError> {
        let states = self.store.read(reads).await?;
        Ok(one_each(states, reads.len(), "reads")?)
    }

    /// A full read's hash, distinct counts and window totals, kept when the entity has a version
    /// to check them against. Never for a view that keeps no versions ([`FeatureView::versioned`]):
    /// a version key left from before its windows went would stay as it is while the entity
    /// changes.
    fn remember(
        &self,
        view: &FeatureView,
        read: &EntityRead,
        mut state: EntityState,
        as_of_ms: i64,
        plan_key: [i64; 2],
    ) -> Arc<CachedEntity> {
        let totals = view.window_totals(&state, as_of_ms);
        state.tiles = Vec::new();
        let version = state.version.take();
        let versioned = version.is_some() && view.versioned();
        let entry = Arc::new(CachedEntity::new(
            version.unwrap_or_default(),
            plan_key,
            state,
            totals,
        ));
        if versioned {
            self.entities
                .insert(&read.view, read.key.as_str(), Arc::clone(&entry));
        }
        entry
    }

    fn plan(&self, view: &FeatureView, as_of_ms: i64) -> Arc<ReadPlan> {
        let key = ReadPlan::key(as_of_ms);
        let mut plans = self.plans.lock().unwrap_or_else(PoisonError::into_inner);
        match plans.get(&view.name) {
            Some((cached, plan)) if *cached == key => Arc::clone(plan),
            _ => {
                let plan = Arc::new(view.read_plan(as_of_ms));
                plans.insert(view.name.clone(), (key, Arc::clone(&plan)));
                plan
            }
        }
    }

    async fn as_of(&self, as_of: Option<Timestamp>) -> Result<i64, LookupError> {
        if let Some(t) = as_of {
            return Ok(t.millis());
        }
        if let Some(ms) = self.clock.fresh() {
            return Ok(ms);
        }
        let stored = self.store.clock().await?;
        Ok(self.clock.refreshed(stored).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use larder_domain::{EntityState, Tier, Tile};
    use serde_json::json;

    use super::*;
    use crate::MockOnlineStore;

    const T: &str = "2019-01-20T00:00:00.000Z";

    fn t() -> Timestamp {
        Timestamp::parse_rfc3339(T).unwrap()
    }

    fn service(store: MockOnlineStore, max_entities: usize) -> LookupService {
        LookupService::new(
            Arc::new(store),
            Arc::new(crate::test_views()),
            Arc::default(),
            max_entities,
            100,
        )
    }

    /// A restaurant with avg_ticket 60.5 and one order a minute before `T`.
    fn stored_restaurant() -> EntityState {
        let view = crate::test_views();
        let measure = &view.view("restaurant").unwrap().measures[0].id;
        let bucket = Tier::Minute.bucket(t().millis() - 60_000);
        let fields = [
            ("id".to_owned(), "r1".to_owned()),
            ("_t".into(), (t().millis() - 60_000).to_string()),
            ("avg_ticket".into(), "60.5".into()),
            ("_t:avg_ticket".into(), "1485175950910".into()),
            ("_mxm".into(), bucket.to_string()),
        ];
        // The store adds an event to one tile of every span.
        let tiles = Tier::Minute.spans().iter().map(|&span| {
            let tile = Tile::containing(span, bucket);
            (Tier::Minute, tile, format!("{measure}:1"))
        });
        EntityState {
            fields: fields.into_iter().collect::<HashMap<_, _>>(),
            tiles: tiles.collect(),
            distinct: vec![1],
            version: None,
        }
    }

    #[tokio::test]
    async fn get_serves_every_feature_typed_at_the_store_clock() {
        let mut store = MockOnlineStore::new();
        store
            .expect_clock()
            .times(1)
            .returning(|| Ok(Some(t().millis())));
        store.expect_read().times(1).returning(|reads| {
            assert_eq!(
                (reads[0].view.as_str(), reads[0].key.as_str()),
                ("restaurant", "r1")
            );
            assert_eq!(reads[0].plan.distinct.len(), 1);
            assert_eq!(reads[0].plan.distinct[0].hi_ms, t().millis());
            assert!(!reads[0].plan.tiles.is_empty());
            Ok(vec![stored_restaurant()])
        });
        let value = service(store, 10)
            .get("restaurant", "r1", None)
            .await
            .unwrap();
        assert_eq!(
            Value::Object(value),
            json!({"id": "r1", "avg_ticket": 60.5, "orders_24h": 1, "customers_30d": 1})
        );
    }

    /// `stored_restaurant` at version `version`, with `orders` orders in its last minute.
    fn versioned(version: &str, orders: u32) -> EntityState {
        let mut state = stored_restaurant();
        state.version = Some(version.into());
        for tile in &mut state.tiles {
            tile.2 = tile.2.replace(":1", &format!(":{orders}"));
        }
        state
    }

    /// A store answering one read of one entity per `(version_only, state)`, in this order: a
    /// read of the version alone (answered with `state`'s version and nothing else), or of
    /// everything its plan names.
    fn store_reading(reads: Vec<(bool, EntityState)>) -> MockOnlineStore {
        let mut store = MockOnlineStore::new();
        let mut sequence = mockall::Sequence::new();
        for (version_only, mut answer) in reads {
            if version_only {
                answer = EntityState {
                    version: answer.version,
                    ..EntityState::default()
                };
            }
            store
                .expect_read()
                .times(1)
                .in_sequence(&mut sequence)
                .withf(move |reads| reads.len() == 1 && reads[0].version_only == version_only)
                .returning(move |_| Ok(vec![answer.clone()]));
        }
        store
    }

    /// `orders_24h` (from tiles), `customers_30d` (a distinct count) and `avg_ticket` (from the
    /// hash) of `key` at `as_of`.
    async fn windowed(service: &LookupService, key: &str, as_of: Timestamp) -> [Value; 3] {
        let answer = service.get("restaurant", key, Some(as_of)).await.unwrap();
        ["orders_24h", "customers_30d", "avg_ticket"].map(|f| answer[f].clone())
    }

    #[tokio::test]
    async fn an_unchanged_entity_is_read_by_its_version_and_served_from_the_cache() {
        let store = store_reading(vec![
            (false, versioned("7", 3)),
            (true, versioned("7", 3)),
            (true, versioned("7", 3)),
        ]);
        let service = service(store, 10);
        for _ in 0..3 {
            assert_eq!(
                windowed(&service, "r1", t()).await,
                [json!(3), json!(1), json!(60.5)]
            );
        }
    }

    #[tokio::test]
    async fn a_cached_entity_gone_from_the_store_is_not_found() {
        // No version: read again in full, which finds nothing.
        let store = store_reading(vec![
            (false, versioned("7", 3)),
            (true, EntityState::default()),
            (false, EntityState::default()),
        ]);
        let service = service(store, 10);
        windowed(&service, "r1", t()).await;
        let error = service
            .get("restaurant", "r1", Some(t()))
            .await
            .unwrap_err();
        assert!(matches!(error, LookupError::NotFound));
    }

    #[tokio::test]
    async fn a_changed_entity_is_read_again_in_full() {
        // The second lookup's hash shows a new version: the tiles are read again, and kept.
        let store = store_reading(vec![
            (false, versioned("7", 3)),
            (true, versioned("8", 4)),
            (false, versioned("8", 4)),
            (true, versioned("8", 4)),
        ]);
        let service = service(store, 10);
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.push(windowed(&service, "r1", t()).await[0].clone());
        }
        assert_eq!(seen, [json!(3), json!(4), json!(4)]);
    }

    #[tokio::test]
    async fn another_minute_or_an_unversioned_entity_reads_everything() {
        let store = store_reading(vec![
            (false, versioned("7", 3)),
            (false, versioned("7", 3)),
            (false, stored_restaurant()),
            (false, stored_restaurant()),
        ]);
        let service = service(store, 10);
        let later = Timestamp::from_millis(t().millis() + 60_000).unwrap();
        windowed(&service, "r1", t()).await;
        windowed(&service, "r1", later).await;
        windowed(&service, "r2", t()).await;
        windowed(&service, "r2", t()).await;
    }

    #[tokio::test]
    async fn an_entity_of_a_view_without_versions_is_read_in_full_whatever_version_it_shows() {
        // A version key left from when the view had windows stays as it is while the entity
        // changes: the second lookup must read the new status, not serve the first.
        let config = json!({"view": [{
            "name": "order", "key": "order_id", "sources": {"status": "order_id"},
            "feature": [{"name": "last_status", "agg": "last", "source": "status", "field": "value"}]
        }]});
        let views = FeatureViews::from_config(serde_json::from_value(config).unwrap()).unwrap();
        assert!(!views.view("order").unwrap().versioned());
        assert!(crate::test_views().view("restaurant").unwrap().versioned());
        let order = |status: &str| EntityState {
            fields: [
                ("id", "o1"),
                ("_t", "1547942400000"),
                ("last_status", status),
                ("_t:last_status", "1547942400000"),
            ]
            .into_iter()
            .map(|(field, value)| (field.to_owned(), value.to_owned()))
            .collect(),
            version: Some("7".into()),
            ..EntityState::default()
        };
        let store = store_reading(vec![(false, order("PLACED")), (false, order("CONCLUDED"))]);
        let service = LookupService::new(Arc::new(store), Arc::new(views), Arc::default(), 10, 100);
        let mut seen = Vec::new();
        for _ in 0..2 {
            let answer = service.get("order", "o1", Some(t())).await.unwrap();
            seen.push(answer["last_status"].clone());
        }
        assert_eq!(seen, [json!("PLACED"), json!("CONCLUDED")]);
    }

    #[tokio::test]
    async fn the_store_clock_is_read_once_while_it_is_fresh() {
        let mut store = MockOnlineStore::new();
        store
            .expect_clock()
            .times(1)
            .returning(|| Ok(Some(t().millis())));
        store
            .expect_read()
            .times(2)
            .returning(|_| Ok(vec![stored_restaurant()]));
        let service = service(store, 10);
        for _ in 0..2 {
            service.get("restaurant", "r1", None).await.unwrap();
        }
    }

    #[tokio::test]
    async fn names_that_could_reach_other_keys_never_reach_the_store() {
        let mut store = MockOnlineStore::new();
        store.expect_read().never();
        store.expect_clock().never();
        let service = service(store, 10);
        for (view, key) in [
            ("restaurant", "*"),
            ("restaurant", "a:b"),
            ("Raw_order:", "x"),
        ] {
            let error = service.get(view, key, None).await.unwrap_err();
            assert!(matches!(error, LookupError::InvalidName(_)), "{view}/{key}");
        }
        for view in ["raw_order", "orders"] {
            let error = service.get(view, "x", None).await.unwrap_err();
            assert!(matches!(error, LookupError::UnknownFeature(_)), "{view}");
        }
    }

    #[tokio::test]
    async fn an_unknown_entity_is_not_found() {
        let mut store = MockOnlineStore::new();
        store.expect_clock().returning(|| Ok(None));
        store
            .expect_read()
            .returning(|_| Ok(vec![EntityState::default()]));
        let error = service(store, 10)
            .get("restaurant", "nope", None)
            .await
            .unwrap_err();
        assert!(matches!(error, LookupError::NotFound));
    }

    fn request(features: &[&str], keys: &[&str]) -> OnlineRequest {
        OnlineRequest {
            features: features.iter().map(|f| (*f).to_owned()).collect(),
            entities: [(
                "merchant_id".to_owned(),
                keys.iter().map(|k| (*k).to_owned()).collect(),
            )]
            .into(),
            as_of: Some(t()),
        }
    }

    #[tokio::test]
    async fn online_reads_all_entities_in_one_call_and_answers_by_column() {
        let mut store = MockOnlineStore::new();
        store.expect_clock().never();
        store.expect_read().times(1).returning(|reads| {
            assert_eq!(reads.len(), 2);
            Ok(vec![stored_restaurant(), EntityState::default()])
        });
        let answer = service(store, 10)
            .online(&request(
                &["restaurant:orders_24h", "restaurant:avg_ticket"],
                &["r1", "r2"],
            ))
            .await
            .unwrap();
        let names: Vec<&str> = answer.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "merchant_id",
                "restaurant:orders_24h",
                "restaurant:avg_ticket"
            ]
        );
        assert_eq!(answer.columns[1].values, vec![json!(1), Value::Null]);
        assert_eq!(
            answer.columns[1].statuses,
            vec![ValueStatus::Present, ValueStatus::NotFound]
        );
        assert_eq!(answer.columns[2].values, vec![json!(60.5), Value::Null]);
        assert_eq!(answer.columns[2].times_ms[0], Some(1_485_175_950_910));
    }

    #[tokio::test]
    async fn online_refuses_impossible_requests_before_reading() {
        let mut store = MockOnlineStore::new();
        store.expect_read().never();
        store.expect_clock().never();
        let service = service(store, 2);
        let unknown = service
            .online(&request(&["restaurant:nope"], &["r1"]))
            .await
            .unwrap_err();
        assert!(matches!(unknown, LookupError::UnknownFeature(_)));
        let too_many = service
            .online(&request(&["restaurant"], &["a", "b", "c"]))
            .await
            .unwrap_err();
        assert!(matches!(too_many, LookupError::TooManyEntities { max: 2 }));
        let bad_key = service
            .online(&request(&["restaurant"], &["a*"]))
            .await
            .unwrap_err();
        assert!(matches!(bad_key, LookupError::InvalidName(_)));
        let mut missing = request(&["restaurant"], &["a"]);
        missing.entities = [("customer_id".to_owned(), vec!["a".to_owned()])].into();
        let missing = service.online(&missing).await.unwrap_err();
        assert!(matches!(missing, LookupError::InvalidRequest(_)));
        let none = service.online(&request(&[], &["a"])).await.unwrap_err();
        assert!(matches!(none, LookupError::InvalidRequest(_)));
    }
}
