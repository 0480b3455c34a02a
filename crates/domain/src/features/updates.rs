//! What an event changes in the online state of each entity it touches: a list of primitive
//! operations per entity, which a store applies atomically (the Redis adapter in a Lua script).
//! Every operation is commutative or ordered by event time, so applying the same events in any
//! order ends in the same state.

use serde_json::{Map, Value};

use crate::{Event, Source, Tier};

use super::definition::{
    FIXED_POINT, FeatureKind, FeatureView, FeatureViews, Filter, KeyRef, Measure, MeasureKind,
};

/// Updates to one entity of one view.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityUpdate {
    pub view: String,
    pub target: Target,
    pub ops: Vec<StateOp>,
    /// Whether the entity gets a new version ([`FeatureView::versioned`]).
    pub versioned: bool,
}

/// Which entity: known from the event, or found through another view's `last` feature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Key(String),
    /// The entity is the value of `feature` of entity `key` of `view`. Until that is known, the
    /// operations wait on that entity and are applied when it learns the value.
    Via {
        view: String,
        key: String,
        feature: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    Add,
    Min,
    Max,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StateOp {
    /// The entity exists; its newest event time is at least `time_ms`.
    Touch {
        time_ms: i64,
    },
    /// Set `feature` to `value` unless a value with a newer event time is stored.
    Last {
        feature: String,
        value: String,
        time_ms: i64,
    },
    /// Combine each of `values` into the tiles of every span of `tier` that hold `bucket`,
    /// unless the bucket is `retention` or more buckets behind the entity's newest one; prune
    /// old tiles every `prune_every` buckets. One operation per tier and event, whatever the
    /// number of measures: each tile is read and written once.
    Tiles {
        tier: Tier,
        bucket: i64,
        values: Vec<TileValue>,
        retention: i64,
        prune_every: i64,
    },
    Lifetime {
        measure: String,
        combine: Combine,
        value: i64,
    },
    /// Remember `member` with its newest event time; forget members older than the entity's
    /// newest event minus `retention_ms`.
    Distinct {
        measure: String,
        member: String,
        time_ms: i64,
        retention_ms: i64,
    },
    Frequency {
        measure: String,
        value: String,
    },
    /// Apply the operations that wait on this entity for `view`, to entity `key` of `view`.
    Drain {
        view: String,
        key: String,
    },
}

/// One measure's contribution to a tile.
#[derive(Debug, Clone, PartialEq)]
pub struct TileValue {
    pub measure: String,
    pub combine: Combine,
    pub value: i64,
}

/// The text of a field of a normalised record, as stored: strings as is, numbers and booleans as
/// their JSON text; absent for null or missing.
fn text(record: &Map<String, Value>, field: &str) -> Option<String> {
    match record.get(field)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn fixed_point(record: &Map<String, Value>, field: &str) -> Option<i64> {
    let number = record.get(field)?.as_f64()?;
    Some((number * FIXED_POINT).round() as i64)
}

fn matches(record: &Map<String, Value>, filter: Option<(&str, &str)>) -> bool {
    filter.is_none_or(|(field, equals)| text(record, field).as_deref() == Some(equals))
}

/// Whether `view` takes `source` only through filtered features and `record` matches none of
/// their filters (a status other than CANCELLED for the restaurant's `cancellations_7d`). Such an
/// event feeds nothing of the entity, so it leaves it alone: it neither creates it nor moves its
/// newest event time, and ingestion skips the entity (for a status, a lookup of its order and a
/// write of its restaurant). A source the view takes with no filter, or through no feature at
/// all (it only makes entities exist), still touches it.
fn filtered_out(view: &FeatureView, source: Source, record: &Map<String, Value>) -> bool {
    let last_filters = view
        .features
        .iter()
        .filter_map(|feature| match &feature.kind {
            FeatureKind::Last {
                source: s, filter, ..
            } if *s == source => Some(last_filter(filter)),
            _ => None,
        });
    let measures = view.measures.iter().filter(|m| m.source == source);
    let measure_filters = measures.map(measure_filter);
    let mut taken = false;
    for filter in last_filters.chain(measure_filters) {
        if matches(record, filter) {
            return false;
        }
        taken = true;
    }
    taken
}

/// A `last` feature's filter as [`matches`] takes it.
fn last_filter(filter: &Option<Filter>) -> Option<(&str, &str)> {
    filter
        .as_ref()
        .map(|f| (f.field.as_str(), f.equals.as_str()))
}

/// A measure's filter as [`matches`] takes it.
fn measure_filter(measure: &Measure) -> Option<(&str, &str)> {
    measure
        .filter
        .as_ref()
        .map(|(f, v)| (f.as_str(), v.as_str()))
}

impl FeatureViews {
    /// Every entity update `event` causes, view by view.
    pub fn updates_for(&self, event: &Event) -> Vec<EntityUpdate> {
        match event.to_value() {
            Value::Object(record) => self.updates_for_record(event, &record),
            _ => Vec::new(),
        }
    }

    /// [`Self::updates_for`] with the record already turned into a value ([`Event::to_value`]),
    /// so ingestion serialises each event once.
    pub fn updates_for_record(
        &self,
        event: &Event,
        record: &Map<String, Value>,
    ) -> Vec<EntityUpdate> {
        let time_ms = event.event_time().millis();
        let mut updates = Vec::new();
        for view in self.views() {
            for view_source in view.sources.iter().filter(|s| s.source == event.source()) {
                let target = match &view_source.key {
                    KeyRef::Field(field) => text(record, field).map(Target::Key),
                    KeyRef::Via {
                        field,
                        view,
                        feature,
                    } => text(record, field).map(|key| Target::Via {
                        view: view.clone(),
                        key,
                        feature: feature.clone(),
                    }),
                };
                let Some(target) = target else {
                    // e.g. an order without customer_id feeds no consumer feature.
                    continue;
                };
                if filtered_out(view, event.source(), record) {
                    continue;
                }
                let ops = self.ops(view, event, record, time_ms);
                updates.push(EntityUpdate {
                    view: view.name.clone(),
                    target,
                    ops,
                    versioned: view.versioned(),
                });
            }
        }
        updates
    }

    fn ops(
        &self,
        view: &FeatureView,
        event: &Event,
        record: &Map<String, Value>,
        time_ms: i64,
    ) -> Vec<StateOp> {
        let source = event.source();
        let mut ops = vec![StateOp::Touch { time_ms }];
        for feature in &view.features {
            let FeatureKind::Last {
                source: s,
                field,
                filter,
            } = &feature.kind
            else {
                continue;
            };
            if *s != source || !matches(record, last_filter(filter)) {
                continue;
            }
            if let Some(value) = text(record, field) {
                for waiting in self.waiting_on(view, &feature.name) {
                    ops.push(StateOp::Drain {
                        view: waiting.to_owned(),
                        key: value.clone(),
                    });
                }
                ops.push(StateOp::Last {
                    feature: feature.name.clone(),
                    value,
                    time_ms,
                });
            }
        }
        let mut tiles: Vec<(Tier, Vec<TileValue>)> = Vec::new();
        for measure in view.measures.iter().filter(|m| m.source == source) {
            if !matches(record, measure_filter(measure)) {
                continue;
            }
            let field = measure.field.as_deref().unwrap_or_default();
            let id = measure.id.clone();
            let (combine, value) = match measure.kind {
                MeasureKind::Count => (Combine::Add, Some(1)),
                MeasureKind::Sum => (Combine::Add, fixed_point(record, field)),
                MeasureKind::Min => (Combine::Min, fixed_point(record, field)),
                MeasureKind::Max => (Combine::Max, fixed_point(record, field)),
                MeasureKind::Distinct => {
                    if let Some(member) = text(record, field) {
                        let retention_ms = view.distinct_retention_ms;
                        ops.push(StateOp::Distinct {
                            measure: id,
                            member,
                            time_ms,
                            retention_ms,
                        });
                    }
                    continue;
                }
                MeasureKind::Frequency => {
                    if let Some(value) = text(record, field) {
                        ops.push(StateOp::Frequency { measure: id, value });
                    }
                    continue;
                }
            };
            let Some(value) = value else { continue };
            for &tier in &measure.tiers {
                let tile_value = TileValue {
                    measure: id.clone(),
                    combine,
                    value,
                };
                match tiles.iter_mut().find(|(t, _)| *t == tier) {
                    Some((_, values)) => values.push(tile_value),
                    None => tiles.push((tier, vec![tile_value])),
                }
            }
            if measure.lifetime {
                ops.push(StateOp::Lifetime {
                    measure: id,
                    combine,
                    value,
                });
            }
        }
        ops.extend(tiles.into_iter().map(|(tier, values)| StateOp::Tiles {
            tier,
            bucket: tier.bucket(time_ms),
            values,
            retention: view.retention(tier),
            prune_every: tier.prune_every(),
        }));
        // Drains go last: what waits may need this event's own updates (e.g. the entity exists).
        ops.sort_by_key(|op| matches!(op, StateOp::Drain { .. }));
        ops
    }

    /// The views whose events wait on `view`'s `feature` to learn their key.
    fn waiting_on<'a>(
        &'a self,
        view: &'a FeatureView,
        feature: &'a str,
    ) -> impl Iterator<Item = &'a str> {
        self.views().iter().filter_map(move |other| {
            other
                .sources
                .iter()
                .any(|s| matches!(&s.key, KeyRef::Via { view: v, feature: f, .. } if *v == view.name && f == feature))
                .then_some(other.name.as_str())
        })
    }
}
