use serde::Serialize;

/// Why one field of an event was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldError {
    /// The field's name as it appears in the event (`order_total_amount`), or `$` for the event
    /// as a whole (e.g. when it is not a JSON object).
    pub field: String,
    /// A stable machine-readable reason: `required`, `invalid_type`, `out_of_range`, …
    pub code: String,
    /// A sentence for people.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

/// Every problem found in one event; never empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{} invalid field(s): {}", .0.len(), self.summary())]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    /// Wraps `errors`, or `None` when there are none.
    pub fn from_vec(errors: Vec<FieldError>) -> Option<Self> {
        (!errors.is_empty()).then_some(Self(errors))
    }

    pub fn single(error: FieldError) -> Self {
        Self(vec![error])
    }

    pub fn as_slice(&self) -> &[FieldError] {
        &self.0
    }

    fn summary(&self) -> String {
        let fields: Vec<&str> = self.0.iter().map(|e| e.field.as_str()).collect();
        fields.join(", ")
    }
}
