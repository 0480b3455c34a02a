//! Lenient field extraction, as forgiving as the original pydantic models and no more.
//!
//! Each accessor records a [`FieldError`] instead of failing, so one pass reports every bad
//! field. Absent, `null` and (for non-text fields) empty-string values count as missing.

use serde_json::{Map, Value};

use crate::{FieldError, Timestamp};

pub(crate) struct FieldReader<'a> {
    object: &'a Map<String, Value>,
    errors: Vec<FieldError>,
}

type Parse<T> = fn(&Value) -> Result<T, &'static str>;

impl<'a> FieldReader<'a> {
    pub(crate) fn new(object: &'a Map<String, Value>) -> Self {
        Self {
            object,
            errors: Vec::new(),
        }
    }

    pub(crate) fn reject(&mut self, name: &str, code: &str, message: &str) {
        self.errors.push(FieldError::new(name, code, message));
    }

    pub(crate) fn has_error(&self, name: &str) -> bool {
        self.errors.iter().any(|e| e.field == name)
    }

    /// The errors recorded so far; parsing continues after an error so that all are reported.
    pub(crate) fn into_errors(self) -> Vec<FieldError> {
        self.errors
    }

    fn optional<T>(&mut self, name: &str, parse: Parse<T>) -> Option<T> {
        let value = self.object.get(name)?;
        if value.is_null() || value.as_str().is_some_and(|s| s.trim().is_empty()) {
            return None;
        }
        match parse(value) {
            Ok(parsed) => Some(parsed),
            Err(expected) => {
                self.errors.push(FieldError::new(
                    name,
                    "invalid_type",
                    format!("expected {expected}"),
                ));
                None
            }
        }
    }

    fn required<T: Default>(&mut self, name: &str, parse: Parse<T>) -> T {
        let missing = self.object.get(name).is_none_or(Value::is_null);
        if missing {
            self.errors
                .push(FieldError::new(name, "required", "this field is required"));
            return T::default();
        }
        match self.optional(name, parse) {
            Some(value) => value,
            None => {
                // Present but blank: only reachable for an empty string, which is text to `text()`.
                if !self.has_error(name) {
                    self.errors.push(FieldError::new(
                        name,
                        "required",
                        "this field is required and must not be blank",
                    ));
                }
                T::default()
            }
        }
    }

    /// Text that may be blank (`""` is kept as is).
    pub(crate) fn text(&mut self, name: &str) -> String {
        match self.object.get(name) {
            Some(Value::String(s)) if s.trim().is_empty() => s.clone(),
            _ => self.required(name, parse_text),
        }
    }

    pub(crate) fn optional_text(&mut self, name: &str) -> Option<String> {
        self.optional(name, parse_text)
    }

    pub(crate) fn number(&mut self, name: &str) -> f64 {
        self.required(name, parse_number)
    }

    pub(crate) fn optional_number(&mut self, name: &str) -> Option<f64> {
        self.optional(name, parse_number)
    }

    pub(crate) fn integer(&mut self, name: &str) -> i64 {
        self.required(name, parse_integer)
    }

    pub(crate) fn optional_integer(&mut self, name: &str) -> Option<i64> {
        self.optional(name, parse_integer)
    }

    pub(crate) fn boolean(&mut self, name: &str) -> bool {
        self.required(name, parse_boolean)
    }

    pub(crate) fn timestamp(&mut self, name: &str) -> Timestamp {
        self.required(name, parse_timestamp)
            .unwrap_or(Timestamp::EPOCH)
    }

    pub(crate) fn optional_timestamp(&mut self, name: &str) -> Option<Timestamp> {
        self.optional(name, parse_timestamp).flatten()
    }

    pub(crate) fn json_text(&mut self, name: &str) -> String {
        self.required(name, parse_json_text)
    }
}

/// Strings as they are; numbers and booleans as their JSON text (pydantic coerced `14403` to `"14403"`).
fn parse_text(value: &Value) -> Result<String, &'static str> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err("a string"),
    }
}

fn parse_number(value: &Value) -> Result<f64, &'static str> {
    const EXPECTED: &str = "a finite number or a numeric string";
    let number = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    number.filter(|n| n.is_finite()).ok_or(EXPECTED)
}

fn parse_integer(value: &Value) -> Result<i64, &'static str> {
    const EXPECTED: &str = "an integer or an integer string";
    if let Some(i) = value.as_i64() {
        return Ok(i);
    }
    let number = parse_number(value).map_err(|_| EXPECTED)?;
    // `50.0` and `"50.0"` are integers; `50.5` is not.
    let fits = number.fract() == 0.0 && number.abs() < 9.0e15;
    if fits {
        Ok(number as i64)
    } else {
        Err(EXPECTED)
    }
}

fn parse_boolean(value: &Value) -> Result<bool, &'static str> {
    const EXPECTED: &str = "a boolean or one of \"true\", \"false\", \"1\", \"0\"";
    match value {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) if n.as_i64() == Some(1) => Ok(true),
        Value::Number(n) if n.as_i64() == Some(0) => Ok(false),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(EXPECTED),
        },
        _ => Err(EXPECTED),
    }
}

fn parse_timestamp(value: &Value) -> Result<Option<Timestamp>, &'static str> {
    const EXPECTED: &str = "an RFC 3339 timestamp such as 2019-01-25T01:05:07.000Z";
    value
        .as_str()
        .and_then(Timestamp::parse_rfc3339)
        .map(Some)
        .ok_or(EXPECTED)
}

/// A JSON array or object, given as such or as JSON text. Parseable text is normalised to compact
/// JSON so both spellings of one value are the same event; text that does not parse (the real
/// data has an `items` string whose quotes are escaped twice) is kept verbatim rather than lost.
fn parse_json_text(value: &Value) -> Result<String, &'static str> {
    match value {
        Value::Array(_) | Value::Object(_) => Ok(value.to_string()),
        Value::String(text) => Ok(match serde_json::from_str::<Value>(text) {
            Ok(parsed @ (Value::Array(_) | Value::Object(_))) => parsed.to_string(),
            _ => text.clone(),
        }),
        _ => Err("a JSON array or a string of JSON"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read<T>(value: Value, f: impl FnOnce(&mut FieldReader) -> T) -> (T, Vec<FieldError>) {
        let object = json!({ "f": value });
        let object = object.as_object().unwrap();
        let mut reader = FieldReader::new(object);
        let out = f(&mut reader);
        (out, reader.into_errors())
    }

    #[test]
    fn numbers_may_be_numeric_strings() {
        assert_eq!(read(json!("46.5"), |r| r.number("f")).0, 46.5);
        assert_eq!(read(json!(46.5), |r| r.number("f")).0, 46.5);
        assert_eq!(read(json!("50"), |r| r.integer("f")).0, 50);
        assert_eq!(read(json!(50.0), |r| r.integer("f")).0, 50);
    }

    #[test]
    fn non_finite_and_non_numeric_values_are_type_errors() {
        for bad in [
            json!("NaN"),
            json!("inf"),
            json!("abc"),
            json!(true),
            json!([1]),
        ] {
            let (_, errors) = read(bad.clone(), |r| r.number("f"));
            assert_eq!(errors.len(), 1, "{bad}");
            assert_eq!(errors[0].code, "invalid_type");
        }
        let (_, errors) = read(json!(50.5), |r| r.integer("f"));
        assert_eq!(errors[0].code, "invalid_type");
    }

    #[test]
    fn booleans_may_be_strings() {
        assert!(read(json!("true"), |r| r.boolean("f")).0);
        assert!(!read(json!("False"), |r| r.boolean("f")).0);
        assert!(read(json!(true), |r| r.boolean("f")).0);
        assert_eq!(
            read(json!("yes"), |r| r.boolean("f")).1[0].code,
            "invalid_type"
        );
    }

    #[test]
    fn blank_and_null_optional_fields_are_absent() {
        assert_eq!(read(json!(""), |r| r.optional_number("f")), (None, vec![]));
        assert_eq!(read(json!(null), |r| r.optional_text("f")), (None, vec![]));
    }

    #[test]
    fn missing_required_fields_are_reported() {
        let (_, errors) = read(json!(null), |r| r.number("f"));
        assert_eq!(errors[0].code, "required");
        let (_, errors) = read(json!(""), |r| r.number("f"));
        assert_eq!(errors[0].code, "required");
        let (_, errors) = read(json!(null), |r| r.text("g"));
        assert_eq!(
            (errors[0].field.as_str(), errors[0].code.as_str()),
            ("g", "required")
        );
    }

    #[test]
    fn json_text_accepts_arrays_and_json_strings_alike() {
        let (from_array, _) = read(json!([{"a": 1}]), |r| r.json_text("f"));
        let (from_text, _) = read(json!("[{\"a\": 1}]"), |r| r.json_text("f"));
        assert_eq!(from_array, from_text);
        assert_eq!(from_array, r#"[{"a":1}]"#);
    }

    #[test]
    fn unparseable_json_text_is_kept_verbatim() {
        let twice_escaped = r#"[{\"name\": \"AÇAÍ\"}]"#;
        let (kept, errors) = read(json!(twice_escaped), |r| r.json_text("f"));
        assert_eq!((kept.as_str(), errors.len()), (twice_escaped, 0));
    }
}
