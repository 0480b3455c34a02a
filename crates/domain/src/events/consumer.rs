use serde::Serialize;
use validator::Validate;

use super::{skip_none, valid_id};
use crate::{Timestamp, fields::FieldReader};

/// A consumer (customer account), as in `consumer.csv` of the original data. Sending one again
/// with changed fields is an update.
#[derive(Debug, Clone, PartialEq, Serialize, Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsumerEvent {
    #[validate(custom(function = valid_id))]
    pub customer_id: String,
    pub language: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    pub active: bool,
    /// Personal data, never logged.
    #[serde(skip_serializing_if = "skip_none")]
    pub customer_name: Option<String>,
    #[serde(skip_serializing_if = "skip_none")]
    pub customer_phone_area: Option<String>,
    #[serde(skip_serializing_if = "skip_none")]
    pub customer_phone_number: Option<String>,
}

impl ConsumerEvent {
    pub(super) fn read(r: &mut FieldReader) -> Self {
        Self {
            customer_id: r.text("customer_id"),
            language: r.text("language"),
            created_at: r.timestamp("created_at"),
            active: r.boolean("active"),
            customer_name: r.optional_text("customer_name"),
            customer_phone_area: r.optional_text("customer_phone_area"),
            customer_phone_number: r.optional_text("customer_phone_number"),
        }
    }
}
