//! Ingestion: validate events, derive their effects, store them exactly once.

use std::sync::Arc;

use larder_domain::{Event, FeatureViews, FieldErrors, Source, content_fingerprint, raw_fields_of};
use serde_json::Value;

use crate::{EventClock, EventStore, EventWrite, StoreError, WriteOutcome, ports::one_each};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The event is malformed; nothing was stored.
    #[error("invalid event: {0}")]
    Invalid(FieldErrors),
    /// A batch holds more events than allowed; nothing was stored.
    #[error("batch of {count} events exceeds the limit of {max}")]
    TooManyEvents { count: usize, max: usize },
    /// The store failed; the event may or may not be stored, and sending it again is safe.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The result for one event of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemResult {
    Accepted { id: String },
    Duplicate { id: String },
    Rejected(FieldErrors),
}

pub struct IngestService {
    store: Arc<dyn EventStore>,
    views: Arc<FeatureViews>,
    clock: Arc<EventClock>,
    max_batch_events: usize,
}

impl IngestService {
    pub fn new(
        store: Arc<dyn EventStore>,
        views: Arc<FeatureViews>,
        clock: Arc<EventClock>,
        max_batch_events: usize,
    ) -> Self {
        Self {
            store,
            views,
            clock,
            max_batch_events,
        }
    }

    /// Ingests one event; answers whether it was new or a resend, with its id.
    ///
    /// # Errors
    /// [`IngestError::Invalid`] for a malformed event, [`IngestError::Store`] when the store fails.
    pub async fn ingest_one(
        &self,
        source: Source,
        value: &Value,
    ) -> Result<(String, WriteOutcome), IngestError> {
        let event = Event::parse(source, value).map_err(IngestError::Invalid)?;
        let write = self.write_for(&event);
        let outcomes = self
            .store
            .append(source, std::slice::from_ref(&write))
            .await?;
        let outcome = single_outcome(&outcomes)?;
        self.clock.advance(write.event_time_ms);
        Ok((write.id, outcome))
    }

    /// Ingests a batch: each valid event is stored, each invalid one reported, independently.
    /// `items` holds either a parsed JSON value or the reason it could not be parsed.
    ///
    /// # Errors
    /// [`IngestError::TooManyEvents`] above the configured limit, [`IngestError::Store`] when the
    /// store fails (then no result is known; resending the whole batch is safe).
    pub async fn ingest_batch(
        &self,
        source: Source,
        items: Vec<Result<Value, FieldErrors>>,
    ) -> Result<Vec<ItemResult>, IngestError> {
        if items.len() > self.max_batch_events {
            return Err(IngestError::TooManyEvents {
                count: items.len(),
                max: self.max_batch_events,
            });
        }
        let mut results = Vec::with_capacity(items.len());
        let mut writes = Vec::with_capacity(items.len());
        for item in items {
            match item.and_then(|value| Event::parse(source, &value)) {
                Ok(event) => {
                    writes.push(self.write_for(&event));
                    results.push(None);
                }
                Err(errors) => results.push(Some(ItemResult::Rejected(errors))),
            }
        }
        if writes.is_empty() {
            return Ok(results.into_iter().flatten().collect());
        }
        let outcomes = self.store.append(source, &writes).await?;
        let outcomes = one_each(outcomes, writes.len(), "writes")?;
        if let Some(newest) = writes.iter().map(|w| w.event_time_ms).max() {
            self.clock.advance(newest);
        }
        let mut stored = writes.into_iter().zip(outcomes);
        Ok(results
            .into_iter()
            .map(|result| {
                result.unwrap_or_else(|| match stored.next() {
                    Some((write, WriteOutcome::Accepted)) => ItemResult::Accepted { id: write.id },
                    Some((write, WriteOutcome::Duplicate)) => {
                        ItemResult::Duplicate { id: write.id }
                    }
                    // Unreachable: one `None` per write, and the lengths were checked above.
                    None => ItemResult::Rejected(FieldErrors::single(
                        larder_domain::FieldError::new("$", "internal", "no outcome"),
                    )),
                })
            })
            .collect())
    }

    /// Serialises the event once and derives payload, fingerprint, raw fields and view updates
    /// from that one value (this is the per-event hot path of ingestion).
    fn write_for(&self, event: &Event) -> EventWrite {
        let value = event.to_value();
        let payload = value.to_string();
        let updates = match &value {
            Value::Object(record) => self.views.updates_for_record(event, record),
            _ => Vec::new(),
        };
        EventWrite {
            id: event.id().to_owned(),
            fingerprint: content_fingerprint(&payload),
            raw_fields: raw_fields_of(&value),
            event_time_ms: event.event_time().millis(),
            updates,
            payload,
        }
    }
}

fn single_outcome(outcomes: &[WriteOutcome]) -> Result<WriteOutcome, StoreError> {
    match outcomes {
        [outcome] => Ok(*outcome),
        other => Err(StoreError::Failed(format!(
            "store answered {} outcomes for 1 write",
            other.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use larder_domain::{FieldError, StateOp, Target};
    use mockall::predicate::eq;
    use serde_json::json;

    use super::*;
    use crate::MockEventStore;

    fn restaurant(id: &str, average_ticket: f64) -> Value {
        json!({
            "id": id, "created_at": "2017-01-23T12:52:30.910Z", "enabled": true,
            "price_range": 3, "average_ticket": average_ticket, "takeout_time": 0,
            "merchant_zip_code": "14025", "merchant_city": "RIBEIRAO PRETO",
            "merchant_state": "SP", "merchant_country": "BR"
        })
    }

    fn service(store: MockEventStore) -> IngestService {
        IngestService::new(
            Arc::new(store),
            Arc::new(crate::test_views()),
            Arc::default(),
            3,
        )
    }

    #[tokio::test]
    async fn an_accepted_restaurant_writes_its_raw_record_and_avg_ticket() {
        let mut store = MockEventStore::new();
        store
            .expect_append()
            .with(eq(Source::Restaurant), mockall::predicate::always())
            .times(1)
            .returning(|_, writes| {
                let write = &writes[0];
                assert_eq!(write.id, "r1");
                assert!(
                    write
                        .raw_fields
                        .contains(&("average_ticket".into(), "60.5".into()))
                );
                let update = &write.updates[0];
                assert_eq!((update.view.as_str(), &update.target), ("restaurant", &Target::Key("r1".into())));
                assert!(update.ops.iter().any(|op| matches!(op,
                    StateOp::Last { feature, value, .. } if feature == "avg_ticket" && value == "60.5")));
                Ok(vec![WriteOutcome::Accepted])
            });
        let (id, outcome) = service(store)
            .ingest_one(Source::Restaurant, &restaurant("r1", 60.5))
            .await
            .unwrap();
        assert_eq!((id.as_str(), outcome), ("r1", WriteOutcome::Accepted));
    }

    #[tokio::test]
    async fn a_duplicate_is_reported_as_such() {
        let mut store = MockEventStore::new();
        store
            .expect_append()
            .returning(|_, _| Ok(vec![WriteOutcome::Duplicate]));
        let (_, outcome) = service(store)
            .ingest_one(Source::Restaurant, &restaurant("r1", 60.0))
            .await
            .unwrap();
        assert_eq!(outcome, WriteOutcome::Duplicate);
    }

    #[tokio::test]
    async fn an_invalid_event_never_reaches_the_store() {
        let mut store = MockEventStore::new();
        store.expect_append().never();
        let error = service(store)
            .ingest_one(Source::Restaurant, &restaurant("r*1", -1.0))
            .await
            .unwrap_err();
        let IngestError::Invalid(errors) = error else {
            panic!("expected Invalid, got {error:?}");
        };
        let fields: Vec<_> = errors.as_slice().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields.len(), 2, "{fields:?}");
        assert!(fields.contains(&"id") && fields.contains(&"average_ticket"));
    }

    #[tokio::test]
    async fn a_store_outage_is_an_error_not_an_acceptance() {
        let mut store = MockEventStore::new();
        store
            .expect_append()
            .returning(|_, _| Err(StoreError::Unavailable("connection refused".into())));
        let error = service(store)
            .ingest_one(Source::Restaurant, &restaurant("r1", 60.0))
            .await
            .unwrap_err();
        assert!(matches!(
            error,
            IngestError::Store(StoreError::Unavailable(_))
        ));
    }

    #[tokio::test]
    async fn a_batch_stores_valid_events_and_reports_invalid_ones_in_place() {
        let mut store = MockEventStore::new();
        store.expect_append().times(1).returning(|_, writes| {
            let ids: Vec<_> = writes.iter().map(|w| w.id.as_str()).collect();
            assert_eq!(ids, ["r1", "r3"]);
            Ok(vec![WriteOutcome::Accepted, WriteOutcome::Duplicate])
        });
        let unparsable = FieldErrors::single(FieldError::new("$", "bad_json", "line 2"));
        let results = service(store)
            .ingest_batch(
                Source::Restaurant,
                vec![
                    Ok(restaurant("r1", 1.0)),
                    Err(unparsable.clone()),
                    Ok(restaurant("r3", 1.0)),
                ],
            )
            .await
            .unwrap();
        assert_eq!(
            results,
            vec![
                ItemResult::Accepted { id: "r1".into() },
                ItemResult::Rejected(unparsable),
                ItemResult::Duplicate { id: "r3".into() },
            ]
        );
    }

    #[tokio::test]
    async fn a_batch_over_the_limit_is_refused_whole() {
        let mut store = MockEventStore::new();
        store.expect_append().never();
        let items = (0..4)
            .map(|i| Ok(restaurant(&format!("r{i}"), 1.0)))
            .collect();
        let error = service(store)
            .ingest_batch(Source::Restaurant, items)
            .await
            .unwrap_err();
        assert!(matches!(
            error,
            IngestError::TooManyEvents { count: 4, max: 3 }
        ));
    }

    #[tokio::test]
    async fn a_batch_of_only_invalid_events_writes_nothing() {
        let mut store = MockEventStore::new();
        store.expect_append().never();
        let results = service(store)
            .ingest_batch(Source::Status, vec![Ok(json!({"value": "PLACED"}))])
            .await
            .unwrap();
        assert!(matches!(results.as_slice(), [ItemResult::Rejected(_)]));
    }
}
