//! The real-time features computed at ingestion. For now the one the original API had:
//! `rtf_restaurant:{id}` with the restaurant's `id` and `avg_ticket` (its `average_ticket`).

use larder_domain::Event;
use serde_json::Value;

use crate::FeatureWrite;

/// How a stored feature field is typed in answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldKind {
    Text,
    Float,
}

struct FeatureSchema {
    name: &'static str,
    fields: &'static [(&'static str, FieldKind)],
}

const FEATURES: &[FeatureSchema] = &[FeatureSchema {
    name: "restaurant",
    fields: &[("id", FieldKind::Text), ("avg_ticket", FieldKind::Float)],
}];

/// The catalogue of real-time features: which exist, how events feed them, how their stored
/// text is typed when served.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealtimeFeatures;

impl RealtimeFeatures {
    pub fn names(&self) -> impl Iterator<Item = &'static str> {
        FEATURES.iter().map(|f| f.name)
    }

    pub fn contains(&self, name: &str) -> bool {
        FEATURES.iter().any(|f| f.name == name)
    }

    /// The feature hashes `event` updates.
    pub fn writes_for(&self, event: &Event) -> Vec<FeatureWrite> {
        match event {
            Event::Restaurant(restaurant) => vec![FeatureWrite {
                feature: "restaurant",
                key: restaurant.id.clone(),
                fields: vec![
                    ("id", restaurant.id.clone()),
                    ("avg_ticket", restaurant.average_ticket.to_string()),
                ],
            }],
            Event::Order(_) | Event::Status(_) | Event::Consumer(_) => Vec::new(),
        }
    }

    /// Types stored text for answers: known numeric fields become JSON numbers, the rest stay
    /// text (a field a newer version wrote is served as text rather than dropped).
    pub fn typed(
        &self,
        feature: &str,
        fields: Vec<(String, String)>,
    ) -> serde_json::Map<String, Value> {
        let schema = FEATURES.iter().find(|f| f.name == feature);
        fields
            .into_iter()
            .map(|(name, text)| {
                let kind = schema
                    .and_then(|s| s.fields.iter().find(|(n, _)| *n == name))
                    .map_or(FieldKind::Text, |(_, kind)| *kind);
                let value = match kind {
                    FieldKind::Float => text
                        .parse::<f64>()
                        .ok()
                        .and_then(serde_json::Number::from_f64)
                        .map_or(Value::String(text), Value::Number),
                    FieldKind::Text => Value::String(text),
                };
                (name, value)
            })
            .collect()
    }
}
