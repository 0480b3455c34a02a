//! larder's domain: the four iFood event sources, how their records are parsed and validated,
//! and the identity of an event. No I/O lives here.
//!
//! Key decision: parsing is written by hand over a `serde_json::Value` instead of derived, so that
//! the leniency of the original pydantic models (numbers as numeric strings, booleans as
//! `"true"`, `items` as an array or a JSON string) is explicit and every bad field is reported at
//! once, by name, rather than the first one serde stumbles on.

mod batch;
mod errors;
mod events;
mod features;
mod fields;
mod keys;
mod source;
mod timestamp;

pub use batch::{BATCH_FEATURES, BatchFeature, SIMPLE_FEATURE};
pub use errors::{FieldError, FieldErrors};
pub use events::{
    ConsumerEvent, Event, FieldType, OrderEvent, OrderStatus, RestaurantEvent, StatusEvent,
    content_fingerprint, raw_fields_of,
};
pub use features::*;
pub use keys::{EntityKey, FeatureName, InvalidName, is_valid_id};
pub use source::{Source, UnknownSource};
pub use timestamp::Timestamp;
