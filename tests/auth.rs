//! Bearer-token auth: write scope for ingestion, read scope for lookups, probes open.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use larder_e2e::{TestApp, restaurant_event, test_settings};
use secrecy::SecretString;
use serde_json::Value;

async fn app_with_tokens() -> TestApp {
    let mut settings = test_settings();
    settings.auth.read_tokens = vec![SecretString::from("reader-token")];
    settings.auth.write_tokens = vec![SecretString::from("writer-token")];
    TestApp::spawn_with(settings).await
}

async fn post_restaurant(app: &TestApp, token: Option<&str>) -> (u16, Value) {
    let mut request = app
        .http
        .post(app.url("/restaurant-event/"))
        .json(&restaurant_event("r1", 60.0));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn get_restaurant(app: &TestApp, token: Option<&str>) -> u16 {
    let mut request = app.http.get(app.url("/real-time-fs/get/restaurant/r1"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn writes_need_a_write_token() {
    let app = app_with_tokens().await;
    let (status, body) = post_restaurant(&app, None).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
    let (status, _) = post_restaurant(&app, Some("guess")).await;
    assert_eq!(status, 401);
    let (status, body) = post_restaurant(&app, Some("reader-token")).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
    assert!(
        app.keys().await.is_empty(),
        "a refused write stored something"
    );
    let (status, _) = post_restaurant(&app, Some("writer-token")).await;
    assert_eq!(status, 200);
    app.cleanup().await;
}

#[tokio::test]
async fn reads_need_a_read_or_write_token_and_probes_stay_open() {
    let app = app_with_tokens().await;
    post_restaurant(&app, Some("writer-token")).await;
    assert_eq!(get_restaurant(&app, None).await, 401);
    assert_eq!(get_restaurant(&app, Some("reader-tokenX")).await, 401);
    assert_eq!(get_restaurant(&app, Some("reader-token")).await, 200);
    assert_eq!(get_restaurant(&app, Some("writer-token")).await, 200);
    assert_eq!(app.get("/health").await.status(), 200);
    assert_eq!(app.get("/ready").await.status(), 200);
    assert_eq!(app.get("/openapi.json").await.status(), 200);
    app.cleanup().await;
}
