//! Serving real-time features by name and key.

use std::sync::Arc;

use larder_domain::{EntityKey, FeatureName, InvalidName};
use serde_json::{Map, Value};

use crate::{OnlineStore, RealtimeFeatures, StoreError};

/// A feature's fields, typed for answers.
pub type FeatureValue = Map<String, Value>;

#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The feature name or key is not acceptable (it could address another key family).
    #[error(transparent)]
    InvalidName(#[from] InvalidName),
    #[error("unknown feature `{0}`")]
    UnknownFeature(String),
    #[error("no value for this key")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One page of the listing of stored features.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeaturePage {
    pub features: Vec<&'static str>,
    pub entries: Vec<(String, String)>,
    pub next_cursor: Option<u64>,
}

pub struct LookupService {
    store: Arc<dyn OnlineStore>,
    features: RealtimeFeatures,
}

/// The largest page `list` returns, whatever is asked.
pub const MAX_PAGE: usize = 1000;

impl LookupService {
    pub fn new(store: Arc<dyn OnlineStore>) -> Self {
        Self {
            store,
            features: RealtimeFeatures,
        }
    }

    /// The value of `feature` for `key`.
    ///
    /// # Errors
    /// [`LookupError::InvalidName`] for a name or key outside the allowed alphabet,
    /// [`LookupError::UnknownFeature`], [`LookupError::NotFound`], [`LookupError::Store`].
    pub async fn get(&self, feature: &str, key: &str) -> Result<FeatureValue, LookupError> {
        let feature = FeatureName::parse(feature)?;
        let key = EntityKey::parse(key)?;
        if !self.features.contains(feature.as_str()) {
            return Err(LookupError::UnknownFeature(feature.to_string()));
        }
        let fields = self.store.read(&feature, &key).await?;
        match fields {
            Some(fields) if !fields.is_empty() => Ok(self.features.typed(feature.as_str(), fields)),
            _ => Err(LookupError::NotFound),
        }
    }

    /// The known features and one page of stored `(feature, key)` pairs.
    ///
    /// # Errors
    /// [`LookupError::Store`] when the store fails.
    pub async fn list(&self, cursor: u64, limit: usize) -> Result<FeaturePage, LookupError> {
        let page = self.store.scan(cursor, limit.clamp(1, MAX_PAGE)).await?;
        Ok(FeaturePage {
            features: self.features.names().collect(),
            entries: page.entries,
            next_cursor: page.next_cursor,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{MockOnlineStore, StoredFeaturePage};

    #[tokio::test]
    async fn a_stored_restaurant_is_served_with_typed_values() {
        let mut store = MockOnlineStore::new();
        store.expect_read().returning(|feature, key| {
            assert_eq!((feature.as_str(), key.as_str()), ("restaurant", "r1"));
            Ok(Some(vec![
                ("id".into(), "r1".into()),
                ("avg_ticket".into(), "60.5".into()),
            ]))
        });
        let value = LookupService::new(Arc::new(store))
            .get("restaurant", "r1")
            .await
            .unwrap();
        assert_eq!(
            Value::Object(value),
            json!({"id": "r1", "avg_ticket": 60.5})
        );
    }

    #[tokio::test]
    async fn names_that_could_reach_other_keys_never_reach_the_store() {
        let mut store = MockOnlineStore::new();
        store.expect_read().never();
        let service = LookupService::new(Arc::new(store));
        for (feature, key) in [
            ("restaurant", "*"),
            ("restaurant", "a:b"),
            ("Raw_order:", "x"),
        ] {
            let error = service.get(feature, key).await.unwrap_err();
            assert!(
                matches!(error, LookupError::InvalidName(_)),
                "{feature}/{key}"
            );
        }
        for feature in ["raw_order", "orders"] {
            let error = service.get(feature, "x").await.unwrap_err();
            assert!(matches!(error, LookupError::UnknownFeature(_)), "{feature}");
        }
    }

    #[tokio::test]
    async fn an_absent_key_is_not_found() {
        let mut store = MockOnlineStore::new();
        store.expect_read().returning(|_, _| Ok(None));
        let error = LookupService::new(Arc::new(store))
            .get("restaurant", "nope")
            .await
            .unwrap_err();
        assert!(matches!(error, LookupError::NotFound));
    }

    #[tokio::test]
    async fn listing_asks_for_a_bounded_page() {
        let mut store = MockOnlineStore::new();
        store.expect_scan().returning(|cursor, limit| {
            assert_eq!((cursor, limit), (7, MAX_PAGE));
            Ok(StoredFeaturePage {
                entries: vec![("restaurant".into(), "r1".into())],
                next_cursor: Some(9),
            })
        });
        let page = LookupService::new(Arc::new(store))
            .list(7, 1_000_000)
            .await
            .unwrap();
        assert_eq!(
            (page.features, page.next_cursor),
            (vec!["restaurant"], Some(9))
        );
    }
}
