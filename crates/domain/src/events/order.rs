use serde::Serialize;
use validator::Validate;

use super::{skip_none, valid_id};
use crate::{Timestamp, fields::FieldReader};

/// An order, as in `order.json` of the original data.
#[derive(Debug, Clone, PartialEq, Serialize, Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderEvent {
    /// The customer's CPF (tax id); personal data, never logged.
    #[validate(length(min = 1, max = 32, message = "must be 1 to 32 characters"))]
    pub cpf: String,
    /// Null on a few real orders; such an order feeds no consumer feature.
    #[serde(skip_serializing_if = "skip_none")]
    #[validate(custom(function = valid_id))]
    pub customer_id: Option<String>,
    #[serde(skip_serializing_if = "skip_none")]
    pub customer_name: Option<String>,
    pub delivery_address_city: String,
    pub delivery_address_country: String,
    pub delivery_address_district: String,
    pub delivery_address_external_id: String,
    #[validate(range(min = -90.0, max = 90.0, message = "must be between -90 and 90"))]
    pub delivery_address_latitude: f64,
    #[validate(range(min = -180.0, max = 180.0, message = "must be between -180 and 180"))]
    pub delivery_address_longitude: f64,
    pub delivery_address_state: String,
    pub delivery_address_zip_code: String,
    /// The ordered items as JSON text (an array, or text kept verbatim when it is not JSON).
    pub items: String,
    /// The restaurant's `id`.
    #[validate(custom(function = valid_id))]
    pub merchant_id: String,
    #[validate(range(min = -90.0, max = 90.0, message = "must be between -90 and 90"))]
    pub merchant_latitude: f64,
    #[validate(range(min = -180.0, max = 180.0, message = "must be between -180 and 180"))]
    pub merchant_longitude: f64,
    pub merchant_timezone: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub order_created_at: Timestamp,
    #[validate(custom(function = valid_id))]
    pub order_id: String,
    pub order_scheduled: bool,
    #[serde(skip_serializing_if = "skip_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub order_scheduled_date: Option<Timestamp>,
    #[validate(range(min = 0.0, message = "must be a finite amount >= 0"))]
    pub order_total_amount: f64,
    pub origin_platform: String,
}

impl OrderEvent {
    pub(super) fn read(r: &mut FieldReader) -> Self {
        Self {
            cpf: r.text("cpf"),
            customer_id: r.optional_text("customer_id"),
            customer_name: r.optional_text("customer_name"),
            delivery_address_city: r.text("delivery_address_city"),
            delivery_address_country: r.text("delivery_address_country"),
            delivery_address_district: r.text("delivery_address_district"),
            delivery_address_external_id: r.text("delivery_address_external_id"),
            delivery_address_latitude: r.number("delivery_address_latitude"),
            delivery_address_longitude: r.number("delivery_address_longitude"),
            delivery_address_state: r.text("delivery_address_state"),
            delivery_address_zip_code: r.text("delivery_address_zip_code"),
            items: r.json_text("items"),
            merchant_id: r.text("merchant_id"),
            merchant_latitude: r.number("merchant_latitude"),
            merchant_longitude: r.number("merchant_longitude"),
            merchant_timezone: r.text("merchant_timezone"),
            order_created_at: r.timestamp("order_created_at"),
            order_id: r.text("order_id"),
            order_scheduled: r.boolean("order_scheduled"),
            order_scheduled_date: r.optional_timestamp("order_scheduled_date"),
            order_total_amount: r.number("order_total_amount"),
            origin_platform: r.text("origin_platform"),
        }
    }
}
