//! The four event sources. Field names and types follow the original data; parsing is lenient
//! (see `fields`), validation strict.

mod consumer;
mod order;
mod restaurant;
mod schema;
mod status;

pub use consumer::ConsumerEvent;
pub use order::OrderEvent;
pub use restaurant::RestaurantEvent;
pub use schema::FieldType;
pub use status::{OrderStatus, StatusEvent};

use serde_json::Value;
use validator::{Validate, ValidationError};

use crate::{FieldError, FieldErrors, Source, Timestamp, fields::FieldReader, is_valid_id};

/// One accepted-shape record of any source. Events are short-lived (parsed, turned into a
/// write, dropped), so the size gap between variants costs nothing worth a box.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum Event {
    Order(OrderEvent),
    Status(StatusEvent),
    Restaurant(RestaurantEvent),
    Consumer(ConsumerEvent),
}

impl Event {
    /// Parses and validates one record of `source`, reporting every bad field.
    pub fn parse(source: Source, value: &Value) -> Result<Self, FieldErrors> {
        let Some(object) = value.as_object() else {
            return Err(FieldErrors::single(FieldError::new(
                "$",
                "invalid_type",
                "an event must be a JSON object",
            )));
        };
        let mut reader = FieldReader::new(object);
        let event = match source {
            Source::Order => Event::Order(OrderEvent::read(&mut reader)),
            Source::Status => Event::Status(StatusEvent::read(&mut reader)),
            Source::Restaurant => Event::Restaurant(RestaurantEvent::read(&mut reader)),
            Source::Consumer => Event::Consumer(ConsumerEvent::read(&mut reader)),
        };
        let mut errors = reader.into_errors();
        let validated = match &event {
            Event::Order(e) => e.validate(),
            Event::Status(e) => e.validate(),
            Event::Restaurant(e) => e.validate(),
            Event::Consumer(e) => e.validate(),
        };
        if let Err(invalid) = validated {
            for (field, field_errors) in invalid.field_errors() {
                // A field that failed to parse holds a placeholder; its range is meaningless.
                if errors.iter().any(|e| e.field == field) {
                    continue;
                }
                for error in field_errors {
                    let message = error.message.as_deref().unwrap_or(&error.code);
                    errors.push(FieldError::new(field.as_ref(), &error.code, message));
                }
            }
        }
        match FieldErrors::from_vec(errors) {
            Some(errors) => Err(errors),
            None => Ok(event),
        }
    }

    pub fn source(&self) -> Source {
        match self {
            Event::Order(_) => Source::Order,
            Event::Status(_) => Source::Status,
            Event::Restaurant(_) => Source::Restaurant,
            Event::Consumer(_) => Source::Consumer,
        }
    }

    /// The natural id of the record: `order_id`, `status_id`, restaurant `id`, `customer_id`.
    pub fn id(&self) -> &str {
        match self {
            Event::Order(e) => &e.order_id,
            Event::Status(e) => &e.status_id,
            Event::Restaurant(e) => &e.id,
            Event::Consumer(e) => &e.customer_id,
        }
    }

    /// When the event happened in the business, not when larder received it.
    pub fn event_time(&self) -> Timestamp {
        match self {
            Event::Order(e) => e.order_created_at,
            Event::Status(e) => e.created_at,
            Event::Restaurant(e) => e.created_at,
            Event::Consumer(e) => e.created_at,
        }
    }

    /// The record as a JSON object with normalised values; `to_json` is its text.
    pub fn to_value(&self) -> Value {
        let value = match self {
            Event::Order(e) => serde_json::to_value(e),
            Event::Status(e) => serde_json::to_value(e),
            Event::Restaurant(e) => serde_json::to_value(e),
            Event::Consumer(e) => serde_json::to_value(e),
        };
        // Serialising plain structs of strings, numbers and booleans cannot fail.
        value.unwrap_or_default()
    }

    /// The record as compact JSON with normalised values (fields in name order, absent
    /// optionals omitted): equal records have equal text, whatever spelling they arrived in.
    /// This is `to_value()` as text; callers holding the value print it instead.
    pub fn to_json(&self) -> String {
        self.to_value().to_string()
    }

    /// The record as `(field, text)` pairs, the shape of the original `raw_{source}:{id}` hash:
    /// numbers and booleans as their JSON text, absent optionals left out.
    pub fn raw_fields(&self) -> Vec<(String, String)> {
        raw_fields_of(&self.to_value())
    }
}

/// [`Event::raw_fields`] of a record already turned into a value with [`Event::to_value`].
pub fn raw_fields_of(record: &Value) -> Vec<(String, String)> {
    let Value::Object(object) = record else {
        return Vec::new();
    };
    object
        .iter()
        .map(|(field, value)| match value {
            Value::String(text) => (field.clone(), text.clone()),
            other => (field.clone(), other.to_string()),
        })
        .collect()
}

/// A 64-bit fingerprint of an event's normalised content, stable across processes and releases,
/// used to tell a resent event (same fingerprint) from an update (new fingerprint).
pub fn content_fingerprint(json: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(json.as_bytes())
}

fn valid_id(id: &str) -> Result<(), ValidationError> {
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(ValidationError::new("invalid_id")
            .with_message("must be 1 to 128 characters of A-Z, a-z, 0-9, '_', '.', '-'".into()))
    }
}

fn skip_none<T>(value: &Option<T>) -> bool {
    value.is_none()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn restaurant() -> Value {
        json!({
            "id": "d19ff6fca6288939", "created_at": "2017-01-23T12:52:30.910Z",
            "enabled": "false", "price_range": "3", "average_ticket": "60.0",
            "takeout_time": 0, "delivery_time": "", "minimum_order_value": "30.0",
            "merchant_zip_code": 14025, "merchant_city": "RIBEIRAO PRETO",
            "merchant_state": "SP", "merchant_country": "BR"
        })
    }

    fn codes(errors: &FieldErrors) -> Vec<(&str, &str)> {
        let mut codes: Vec<_> = errors
            .as_slice()
            .iter()
            .map(|e| (e.field.as_str(), e.code.as_str()))
            .collect();
        codes.sort();
        codes
    }

    #[test]
    fn a_lenient_restaurant_record_is_accepted_and_normalised() {
        let Event::Restaurant(r) = Event::parse(Source::Restaurant, &restaurant()).unwrap() else {
            panic!("not a restaurant");
        };
        assert_eq!(
            (r.price_range, r.average_ticket, r.enabled),
            (3, 60.0, false)
        );
        assert_eq!(
            (r.delivery_time, r.merchant_zip_code.as_str()),
            (None, "14025")
        );
    }

    #[test]
    fn every_bad_field_is_reported_by_name() {
        let mut bad = restaurant();
        bad["id"] = json!("a*b");
        bad["average_ticket"] = json!(-1);
        bad["enabled"] = json!("maybe");
        bad["created_at"] = json!("23/01/2017");
        bad.as_object_mut().unwrap().remove("merchant_city");
        let errors = Event::parse(Source::Restaurant, &bad).unwrap_err();
        assert_eq!(
            codes(&errors),
            vec![
                ("average_ticket", "range"),
                ("created_at", "invalid_type"),
                ("enabled", "invalid_type"),
                ("id", "invalid_id"),
                ("merchant_city", "required"),
            ]
        );
    }

    #[test]
    fn a_status_outside_the_four_values_is_rejected() {
        let status = json!({"created_at": "2019-01-25T01:05:07.000Z", "order_id": "o1",
                            "status_id": "s1", "value": "DELIVERED"});
        let errors = Event::parse(Source::Status, &status).unwrap_err();
        assert_eq!(codes(&errors), vec![("value", "invalid_value")]);
    }

    #[test]
    fn a_non_object_event_is_rejected_as_a_whole() {
        let errors = Event::parse(Source::Order, &json!([1, 2])).unwrap_err();
        assert_eq!(codes(&errors), vec![("$", "invalid_type")]);
    }

    #[test]
    fn two_spellings_of_one_record_have_one_fingerprint() {
        let mut typed = restaurant();
        typed["enabled"] = json!(false);
        typed["price_range"] = json!(3);
        typed["average_ticket"] = json!(60.0);
        typed["merchant_zip_code"] = json!("14025");
        typed["created_at"] = json!("2017-01-23T10:52:30.910-02:00");
        let a = Event::parse(Source::Restaurant, &restaurant())
            .unwrap()
            .to_json();
        let b = Event::parse(Source::Restaurant, &typed).unwrap().to_json();
        assert_eq!(content_fingerprint(&a), content_fingerprint(&b));
    }

    #[test]
    fn raw_fields_hold_text_and_omit_absent_optionals() {
        let event = Event::parse(Source::Restaurant, &restaurant()).unwrap();
        let fields = event.raw_fields();
        let get = |name: &str| {
            fields
                .iter()
                .find(|(f, _)| f == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("average_ticket"), Some("60.0"));
        assert_eq!(get("enabled"), Some("false"));
        assert_eq!(get("created_at"), Some("2017-01-23T12:52:30.910Z"));
        assert_eq!(get("delivery_time"), None);
    }
}
