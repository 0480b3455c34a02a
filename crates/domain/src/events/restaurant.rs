use serde::Serialize;
use validator::Validate;

use super::{skip_none, valid_id};
use crate::{Timestamp, fields::FieldReader};

/// A restaurant record, as in `restaurant.csv` of the original data. Sending one again with
/// changed fields is an update.
#[derive(Debug, Clone, PartialEq, Serialize, Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RestaurantEvent {
    /// The restaurant's id (`merchant_id` in orders).
    #[validate(custom(function = valid_id))]
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    pub enabled: bool,
    #[validate(range(min = 0, message = "must be >= 0"))]
    pub price_range: i64,
    #[validate(range(min = 0.0, message = "must be a finite amount >= 0"))]
    pub average_ticket: f64,
    #[validate(range(min = 0, message = "must be >= 0 minutes"))]
    pub takeout_time: i64,
    /// Blank on one real restaurant.
    #[serde(skip_serializing_if = "skip_none")]
    #[validate(range(min = 0, message = "must be >= 0 minutes"))]
    pub delivery_time: Option<i64>,
    /// Blank on 95 real restaurants.
    #[serde(skip_serializing_if = "skip_none")]
    #[validate(range(min = 0.0, message = "must be a finite amount >= 0"))]
    pub minimum_order_value: Option<f64>,
    pub merchant_zip_code: String,
    pub merchant_city: String,
    pub merchant_state: String,
    pub merchant_country: String,
}

impl RestaurantEvent {
    pub(super) fn read(r: &mut FieldReader) -> Self {
        Self {
            id: r.text("id"),
            created_at: r.timestamp("created_at"),
            enabled: r.boolean("enabled"),
            price_range: r.integer("price_range"),
            average_ticket: r.number("average_ticket"),
            takeout_time: r.integer("takeout_time"),
            delivery_time: r.optional_integer("delivery_time"),
            minimum_order_value: r.optional_number("minimum_order_value"),
            merchant_zip_code: r.text("merchant_zip_code"),
            merchant_city: r.text("merchant_city"),
            merchant_state: r.text("merchant_state"),
            merchant_country: r.text("merchant_country"),
        }
    }
}
