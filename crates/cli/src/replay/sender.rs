//! Posting batches to `POST /v1/events/{source}` with retries. The server is idempotent, so a
//! batch whose answer was lost can be sent again: what was stored comes back as duplicate.

use std::time::Duration;

use larder_domain::Source;
use reqwest::{StatusCode, header};
use serde::Deserialize;
use tokio::{sync::Mutex, time::Instant};

use super::input::Line;

/// Why one event was rejected, as the report groups it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub line: u64,
    /// `field: code` of the first error, e.g. `order_total_amount: invalid_type`.
    pub reason: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered {
        accepted: u64,
        duplicate: u64,
        rejected: Vec<Rejection>,
        /// Sent before, and that attempt failed (a timeout, a 5xx, a lost connection): it may
        /// have stored events this one then found duplicates.
        resent: bool,
    },
    /// Given up on: a permanent error (4xx) or retries exhausted.
    Undeliverable { reason: String },
}

#[derive(Deserialize)]
struct Answer {
    accepted: u64,
    duplicate: u64,
    results: Vec<ItemAnswer>,
}

#[derive(Deserialize)]
struct ItemAnswer {
    status: String,
    #[serde(default)]
    errors: Vec<FieldErrorAnswer>,
}

#[derive(Deserialize)]
struct FieldErrorAnswer {
    field: String,
    code: String,
    message: String,
}

/// Spaces batches so that at most `rate` events per second leave.
pub struct RateLimit {
    seconds_per_event: f64,
    next: Mutex<Instant>,
}

impl RateLimit {
    pub fn new(events_per_second: f64) -> Self {
        Self {
            seconds_per_event: 1.0 / events_per_second,
            next: Mutex::new(Instant::now()),
        }
    }

    async fn acquire(&self, events: usize) {
        let start = {
            let mut next = self.next.lock().await;
            let start = (*next).max(Instant::now());
            *next = start + Duration::from_secs_f64(self.seconds_per_event * events as f64);
            start
        };
        tokio::time::sleep_until(start).await;
    }
}

pub struct Sender {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    max_attempts: u32,
    rate: Option<RateLimit>,
}

impl Sender {
    pub fn new(base: &str, token: Option<String>, max_attempts: u32, rate: Option<f64>) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap_or_default(),
            base: base.trim_end_matches('/').to_owned(),
            token,
            max_attempts: max_attempts.max(1),
            rate: rate.filter(|r| *r > 0.0).map(RateLimit::new),
        }
    }

    /// Sends one batch, retrying connection errors, 429 and 5xx with exponential backoff (or the
    /// server's `Retry-After`).
    pub async fn send(&self, source: Source, lines: &[Line]) -> Outcome {
        if let Some(rate) = &self.rate {
            rate.acquire(lines.len()).await;
        }
        let url = format!("{}/v1/events/{source}", self.base);
        let mut body = String::with_capacity(lines.iter().map(|l| l.text.len() + 1).sum());
        for line in lines {
            body.push_str(&line.text);
            body.push('\n');
        }
        let mut last_error = String::new();
        for attempt in 0..self.max_attempts {
            let mut request = self
                .http
                .post(&url)
                .header(header::CONTENT_TYPE, "application/x-ndjson")
                .body(body.clone());
            if let Some(token) = &self.token {
                request = request.bearer_auth(token);
            }
            let wait = match request.send().await {
                Ok(response) if response.status().is_success() => {
                    match response.json::<Answer>().await {
                        Ok(answer) => return delivered(answer, lines, attempt > 0),
                        Err(e) => {
                            last_error = format!("unreadable answer: {e}");
                            None
                        }
                    }
                }
                Ok(response)
                    if response.status() == StatusCode::TOO_MANY_REQUESTS
                        || response.status().is_server_error() =>
                {
                    last_error = format!("HTTP {}", response.status());
                    retry_after(&response)
                }
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    return Outcome::Undeliverable {
                        reason: format!(
                            "HTTP {status}: {}",
                            text.chars().take(300).collect::<String>()
                        ),
                    };
                }
                Err(e) => {
                    last_error = e.to_string();
                    None
                }
            };
            let backoff =
                Duration::from_millis(100 * 2u64.pow(attempt.min(6))).min(Duration::from_secs(5));
            tokio::time::sleep(wait.unwrap_or(backoff)).await;
        }
        Outcome::Undeliverable {
            reason: format!("gave up after {} attempts: {last_error}", self.max_attempts),
        }
    }
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let seconds: u64 = response
        .headers()
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds.min(30)))
}

fn delivered(answer: Answer, lines: &[Line], resent: bool) -> Outcome {
    let rejected = answer
        .results
        .iter()
        .zip(lines)
        .filter(|(result, _)| result.status == "rejected")
        .map(|(result, line)| match result.errors.first() {
            Some(error) => Rejection {
                line: line.number,
                reason: format!("{}: {}", error.field, error.code),
                message: error.message.clone(),
            },
            None => Rejection {
                line: line.number,
                reason: "unknown".into(),
                message: String::new(),
            },
        })
        .collect();
    Outcome::Delivered {
        accepted: answer.accepted,
        duplicate: answer.duplicate,
        rejected,
        resent,
    }
}
