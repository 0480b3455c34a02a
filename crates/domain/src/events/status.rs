use std::fmt;

use serde::Serialize;
use validator::Validate;

use super::valid_id;
use crate::{Timestamp, fields::FieldReader};

/// A change of an order's status, as in `status.json` of the original data.
#[derive(Debug, Clone, PartialEq, Serialize, Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusEvent {
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    #[validate(custom(function = valid_id))]
    pub order_id: String,
    #[validate(custom(function = valid_id))]
    pub status_id: String,
    pub value: OrderStatus,
}

/// The status values the original data uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum OrderStatus {
    #[default]
    Placed,
    Registered,
    Concluded,
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 4] = [
        OrderStatus::Placed,
        OrderStatus::Registered,
        OrderStatus::Concluded,
        OrderStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Placed => "PLACED",
            OrderStatus::Registered => "REGISTERED",
            OrderStatus::Concluded => "CONCLUDED",
            OrderStatus::Cancelled => "CANCELLED",
        }
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl StatusEvent {
    pub(super) fn read(r: &mut FieldReader) -> Self {
        let created_at = r.timestamp("created_at");
        let order_id = r.text("order_id");
        let status_id = r.text("status_id");
        let value = r.status("value");
        Self {
            created_at,
            order_id,
            status_id,
            value,
        }
    }
}

impl FieldReader<'_> {
    fn status(&mut self, name: &str) -> OrderStatus {
        let text = self.text(name);
        if self.has_error(name) {
            return OrderStatus::default();
        }
        let found = OrderStatus::ALL
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(text.trim()));
        match found {
            Some(status) => status,
            None => {
                self.reject(
                    name,
                    "invalid_value",
                    "must be one of PLACED, REGISTERED, CONCLUDED, CANCELLED",
                );
                OrderStatus::default()
            }
        }
    }
}
