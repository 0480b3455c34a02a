//! The type of every field of every source, for feature definitions (is this field there, can it
//! be summed?) and for typing served values.

use crate::Source;

/// The type of a source field, as served in feature values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Text,
    Integer,
    Float,
    Boolean,
    Time,
}

impl FieldType {
    pub fn is_numeric(self) -> bool {
        matches!(self, FieldType::Integer | FieldType::Float)
    }
}

use FieldType::{Boolean, Float, Integer, Text, Time};

const ORDER: &[(&str, FieldType)] = &[
    ("cpf", Text),
    ("customer_id", Text),
    ("customer_name", Text),
    ("delivery_address_city", Text),
    ("delivery_address_country", Text),
    ("delivery_address_district", Text),
    ("delivery_address_external_id", Text),
    ("delivery_address_latitude", Float),
    ("delivery_address_longitude", Float),
    ("delivery_address_state", Text),
    ("delivery_address_zip_code", Text),
    ("items", Text),
    ("merchant_id", Text),
    ("merchant_latitude", Float),
    ("merchant_longitude", Float),
    ("merchant_timezone", Text),
    ("order_created_at", Time),
    ("order_id", Text),
    ("order_scheduled", Boolean),
    ("order_scheduled_date", Time),
    ("order_total_amount", Float),
    ("origin_platform", Text),
];

const STATUS: &[(&str, FieldType)] = &[
    ("created_at", Time),
    ("order_id", Text),
    ("status_id", Text),
    ("value", Text),
];

const RESTAURANT: &[(&str, FieldType)] = &[
    ("id", Text),
    ("created_at", Time),
    ("enabled", Boolean),
    ("price_range", Integer),
    ("average_ticket", Float),
    ("takeout_time", Integer),
    ("delivery_time", Integer),
    ("minimum_order_value", Float),
    ("merchant_zip_code", Text),
    ("merchant_city", Text),
    ("merchant_state", Text),
    ("merchant_country", Text),
];

const CONSUMER: &[(&str, FieldType)] = &[
    ("customer_id", Text),
    ("language", Text),
    ("created_at", Time),
    ("active", Boolean),
    ("customer_name", Text),
    ("customer_phone_area", Text),
    ("customer_phone_number", Text),
];

impl Source {
    /// Every field of this source with its type, in the original column order.
    pub fn fields(self) -> &'static [(&'static str, FieldType)] {
        match self {
            Source::Order => ORDER,
            Source::Status => STATUS,
            Source::Restaurant => RESTAURANT,
            Source::Consumer => CONSUMER,
        }
    }

    pub fn field_type(self, field: &str) -> Option<FieldType> {
        self.fields()
            .iter()
            .find(|(name, _)| *name == field)
            .map(|(_, kind)| *kind)
    }
}
