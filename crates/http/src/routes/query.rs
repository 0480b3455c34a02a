//! The `as_of` query parameter shared by lookups.

use larder_domain::Timestamp;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::ApiError;

#[derive(Debug, Deserialize, IntoParams)]
pub struct AsOfQuery {
    /// RFC 3339 instant windows end at (default: the newest event time the store has seen).
    pub as_of: Option<String>,
}

pub fn parse_as_of(text: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    text.map(|t| {
        Timestamp::parse_rfc3339(t).ok_or_else(|| {
            ApiError::InvalidQuery(format!("as_of must be an RFC 3339 instant, got {t:?}"))
        })
    })
    .transpose()
}
