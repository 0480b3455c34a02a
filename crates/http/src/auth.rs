//! Bearer tokens with two scopes. Write tokens also grant read, so a producer needs one token.
//! With no token configured the API is open (the local profile); the binary warns at start.

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web};
use secrecy::{ExposeSecret, SecretString};
use std::future::{Ready, ready};
use subtle::ConstantTimeEq;

use crate::{ApiError, AppState};

#[derive(Clone, Default)]
pub struct AccessTokens {
    read: Vec<SecretString>,
    write: Vec<SecretString>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Read,
    Write,
}

impl AccessTokens {
    pub fn new(read: Vec<SecretString>, write: Vec<SecretString>) -> Self {
        let keep = |tokens: Vec<SecretString>| {
            tokens
                .into_iter()
                .filter(|t| !t.expose_secret().trim().is_empty())
                .collect()
        };
        Self {
            read: keep(read),
            write: keep(write),
        }
    }

    /// True when no token is configured: every route is open.
    pub fn is_open(&self) -> bool {
        self.read.is_empty() && self.write.is_empty()
    }

    fn check(&self, request: &HttpRequest, scope: Scope) -> Result<(), ApiError> {
        if self.is_open() {
            return Ok(());
        }
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(ApiError::Unauthorized)?;
        let can_write = matches_any(&self.write, presented);
        let can_read = can_write || matches_any(&self.read, presented);
        match (scope, can_read, can_write) {
            (_, false, false) => Err(ApiError::Unauthorized),
            (Scope::Write, _, false) => Err(ApiError::Forbidden { scope: "write" }),
            _ => Ok(()),
        }
    }
}

/// Compares against every token without stopping early, each comparison in constant time, so the
/// time taken tells nothing of which token (or how much of one) matched.
fn matches_any(tokens: &[SecretString], presented: &str) -> bool {
    tokens.iter().fold(false, |found, token| {
        let equal: bool = token
            .expose_secret()
            .as_bytes()
            .ct_eq(presented.as_bytes())
            .into();
        found | equal
    })
}

fn check(request: &HttpRequest, scope: Scope) -> Result<(), ApiError> {
    let state = request
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::Internal("application state missing".into()))?;
    state.tokens.check(request, scope)
}

/// Extractor: the request carries a token with the read scope (or auth is off).
pub struct ReadAccess;

/// Extractor: the request carries a token with the write scope (or auth is off).
pub struct WriteAccess;

impl FromRequest for ReadAccess {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(check(request, Scope::Read).map(|()| ReadAccess))
    }
}

impl FromRequest for WriteAccess {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(check(request, Scope::Write).map(|()| WriteAccess))
    }
}
