//! Reading request bodies: content type first, then a size-bounded read, then JSON.

use actix_web::{HttpRequest, http::header, web};
use futures_util::StreamExt;
use larder_domain::{FieldError, FieldErrors};
use serde_json::Value;

use crate::ApiError;

/// How a batch body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    JsonArray,
    Ndjson,
}

fn essence(request: &HttpRequest) -> Option<String> {
    let value = request.headers().get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next()?.trim().to_ascii_lowercase();
    Some(essence)
}

/// Single events must be `application/json`.
pub fn require_json(request: &HttpRequest) -> Result<(), ApiError> {
    match essence(request).as_deref() {
        Some("application/json") => Ok(()),
        _ => Err(ApiError::UnsupportedMediaType {
            expected: "application/json",
        }),
    }
}

/// Batches are a JSON array (`application/json`) or NDJSON (`application/x-ndjson`).
pub fn batch_framing(request: &HttpRequest) -> Result<Framing, ApiError> {
    match essence(request).as_deref() {
        Some("application/json") => Ok(Framing::JsonArray),
        Some("application/x-ndjson" | "application/ndjson" | "application/jsonl") => {
            Ok(Framing::Ndjson)
        }
        _ => Err(ApiError::UnsupportedMediaType {
            expected: "application/json (an array) or application/x-ndjson",
        }),
    }
}

/// Reads the whole body, refusing it as soon as it passes `limit` bytes (or announces it will).
pub async fn read_bounded(
    request: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, ApiError> {
    let too_large = ApiError::PayloadTooLarge {
        limit,
        unit: "bytes",
    };
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if announced.is_some_and(|length| length > limit) {
        return Err(too_large);
    }
    let mut body = web::BytesMut::with_capacity(announced.unwrap_or(0));
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadJson(format!("could not read the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Parses one JSON document; syntax errors are 400, the shape is checked later (422).
pub fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::BadJson(e.to_string()))
}

/// Parses one JSON document straight into `T`, without the tree of [`parse_json`]: syntax
/// errors are 400, a document of the wrong shape 422.
pub fn parse_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::InvalidBody(e.to_string()),
        _ => ApiError::BadJson(e.to_string()),
    })
}

/// Splits a batch body into its events. In NDJSON a line that is not JSON is rejected on its own
/// (the other lines still count); a JSON array body must parse as a whole.
pub fn split_batch(
    bytes: &[u8],
    framing: Framing,
) -> Result<Vec<Result<Value, FieldErrors>>, ApiError> {
    match framing {
        Framing::JsonArray => match parse_json(bytes)? {
            Value::Array(items) => Ok(items.into_iter().map(Ok).collect()),
            _ => Err(ApiError::InvalidBody(
                "a batch must be a JSON array of events (or NDJSON)".into(),
            )),
        },
        Framing::Ndjson => Ok(bytes
            .split(|b| *b == b'\n')
            .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
            .map(|line| {
                serde_json::from_slice(line).map_err(|e| {
                    FieldErrors::single(FieldError::new("$", "bad_json", e.to_string()))
                })
            })
            .collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_of_bad_syntax_is_400_and_of_the_wrong_shape_422() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Body {
            features: Vec<String>,
        }
        let code = |bytes: &[u8]| {
            actix_web::ResponseError::status_code(&parse_body::<Body>(bytes).unwrap_err())
        };
        assert_eq!(code(b"{\"features\": [").as_u16(), 400);
        assert_eq!(code(b"{\"features\": 7}").as_u16(), 422);
        assert_eq!(code(b"{}").as_u16(), 422);
        assert_eq!(
            parse_body::<Body>(b"{\"features\": [\"a\"]}")
                .unwrap()
                .features,
            ["a"]
        );
    }

    #[test]
    fn ndjson_lines_fail_alone() {
        let items = split_batch(b"{\"a\":1}\n{oops\n\n[2]\n", Framing::Ndjson).unwrap();
        assert_eq!(items.len(), 3);
        assert!(items[0].is_ok() && items[1].is_err() && items[2].is_ok());
    }

    #[test]
    fn a_json_batch_must_be_an_array() {
        assert!(matches!(
            split_batch(b"{\"a\":1}", Framing::JsonArray),
            Err(ApiError::InvalidBody(_))
        ));
        assert!(matches!(
            split_batch(b"[{\"a\":1}", Framing::JsonArray),
            Err(ApiError::BadJson(_))
        ));
    }
}
