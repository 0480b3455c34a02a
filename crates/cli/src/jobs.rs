//! `larder jobs run NAME` and `larder jobs status ID`: the job API from the command line.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

/// Sends `request` (with the token, if any) and answers its JSON body, or the error status.
async fn call(request: reqwest::RequestBuilder, token: Option<&str>) -> anyhow::Result<Value> {
    let request = match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    let response = request.send().await.context("reaching the API")?;
    let status = response.status();
    let body: Value = response.json().await.context("reading the answer")?;
    if !status.is_success() {
        bail!("HTTP {status}: {body}");
    }
    Ok(body)
}

/// Queues `name`; with `wait`, polls until the run succeeds or fails (at most `wait`).
///
/// # Errors
/// When the API refuses or cannot be reached, or the run fails or times out while waiting.
pub async fn run(
    url: &str,
    token: Option<&str>,
    name: &str,
    wait: Option<Duration>,
) -> anyhow::Result<Value> {
    let url = url.trim_end_matches('/');
    let body = call(
        reqwest::Client::new().post(format!("{url}/v1/jobs/{name}")),
        token,
    )
    .await?;
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
    let url = url.trim_end_matches('/');
    call(
        reqwest::Client::new().get(format!("{url}/v1/jobs/{id}")),
        token,
    )
    .await
}
