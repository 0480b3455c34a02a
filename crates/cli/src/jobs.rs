//! `larder jobs run NAME` and `larder jobs status ID`: the job API from the command line.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

/// Queues `name`; with `wait`, polls until the run succeeds or fails (at most `timeout`).
///
/// # Errors
/// When the API refuses or cannot be reached, or the run fails or times out while waiting.
pub async fn run(
    url: &str,
    token: Option<&str>,
    name: &str,
    wait: Option<Duration>,
) -> anyhow::Result<Value> {
    let http = reqwest::Client::new();
    let mut request = http.post(format!("{}/v1/jobs/{name}", url.trim_end_matches('/')));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.context("reaching the API")?;
    let status = response.status();
    let body: Value = response.json().await.context("reading the answer")?;
    if !status.is_success() {
        bail!("HTTP {status}: {body}");
    }
    let Some(timeout) = wait else { return Ok(body) };
    let id = body["id"]
        .as_str()
        .context("no id in the answer")?
        .to_owned();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let record = status_of(url, token, &id).await?;
        match record["state"].as_str() {
            Some("succeeded") => return Ok(record),
            Some("failed") => bail!("job {id} failed: {}", record["error"]),
            _ if tokio::time::Instant::now() >= deadline => {
                bail!("job {id} still {} after {timeout:?}", record["state"])
            }
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// The record of run `id`.
///
/// # Errors
/// When the API refuses or cannot be reached.
pub async fn status_of(url: &str, token: Option<&str>, id: &str) -> anyhow::Result<Value> {
    let mut request =
        reqwest::Client::new().get(format!("{}/v1/jobs/{id}", url.trim_end_matches('/')));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.context("reaching the API")?;
    let status = response.status();
    let body: Value = response.json().await.context("reading the answer")?;
    if !status.is_success() {
        bail!("HTTP {status}: {body}");
    }
    Ok(body)
}
