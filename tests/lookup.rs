//! Lookups, listing, probes and documentation routes against real Redis.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use larder_e2e::{TestApp, restaurant_event};
use serde_json::{Value, json};

#[tokio::test]
async fn a_restaurant_event_is_served_as_the_restaurant_feature() {
    let app = TestApp::spawn().await;
    app.post_json("/restaurant-event/", &restaurant_event("r1", 60.5))
        .await;
    let response = app.get("/real-time-fs/get/restaurant/r1").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["key"], "r1");
    let value = &body["value"];
    assert_eq!(
        (value["id"].clone(), value["avg_ticket"].clone()),
        (json!("r1"), json!(60.5))
    );
    assert_eq!(
        (value["price_range"].clone(), value["enabled"].clone()),
        (json!(3), json!(true))
    );
    assert_eq!(
        (value["orders_24h"].clone(), value["revenue_24h"].clone()),
        (json!(0), json!(0.0))
    );
    assert_eq!(value["cancel_rate_7d"], Value::Null);
    app.cleanup().await;
}

#[tokio::test]
async fn lookups_cannot_reach_other_key_families() {
    let app = TestApp::spawn().await;
    app.post_json("/restaurant-event/", &restaurant_event("r1", 60.5))
        .await;
    let cases = [
        ("/real-time-fs/get/restaurant/absent", 404, "not_found"),
        ("/real-time-fs/get/dish/r1", 404, "unknown_feature"),
        (
            "/real-time-fs/get/restaurant/r1?as_of=yesterday",
            400,
            "invalid_query",
        ),
        // raw_ hashes exist for r1, but a feature name cannot address them.
        (
            "/real-time-fs/get/raw_restaurant/r1",
            404,
            "unknown_feature",
        ),
        ("/real-time-fs/get/restaurant/r*", 400, "invalid_name"),
        ("/real-time-fs/get/restaurant/r1%3Ax", 400, "invalid_name"),
        ("/real-time-fs/get/Restaurant/r1", 400, "invalid_name"),
    ];
    for (path, status, code) in cases {
        let response = app.get(path).await;
        assert_eq!(response.status().as_u16(), status, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], code, "{path}");
    }
    let long_key = format!("/real-time-fs/get/restaurant/{}", "k".repeat(129));
    assert_eq!(app.get(&long_key).await.status(), 400);
    app.cleanup().await;
}

#[tokio::test]
async fn the_list_describes_every_view_and_pages_through_its_keys() {
    let app = TestApp::spawn().await;
    let batch: Vec<Value> = (0..25)
        .map(|i| restaurant_event(&format!("r{i}"), 10.0))
        .collect();
    app.post_json("/v1/events/restaurant", &Value::Array(batch))
        .await;

    let list: Value = app.get_json("/real-time-fs/list").await;
    assert_eq!(
        list["features"],
        json!(["restaurant", "consumer", "order", "simple_feature"])
    );
    let restaurant = &list["views"][0];
    assert_eq!(
        (restaurant["key"].clone(), restaurant["entities"].clone()),
        (json!("merchant_id"), json!(25))
    );
    assert_eq!(list["views"][1]["entities"], 0);
    let orders_24h = restaurant["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "orders_24h")
        .unwrap();
    assert_eq!(
        (
            orders_24h["agg"].clone(),
            orders_24h["window"].clone(),
            orders_24h["source"].clone(),
            orders_24h["type"].clone()
        ),
        (
            json!("count"),
            json!("24h"),
            json!("order"),
            json!("integer")
        )
    );
    let via = restaurant["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == "status")
        .unwrap();
    assert_eq!(via["via"], "order.merchant_id");
    assert!(list.get("items").is_none());

    let mut seen = Vec::new();
    let mut cursor = 0;
    for _ in 0..100_000 {
        let page: Value = app
            .get_json(&format!(
                "/real-time-fs/list?view=restaurant&cursor={cursor}&limit=1000"
            ))
            .await;
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k.as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.parse().unwrap(),
            None => break,
        }
    }
    seen.sort();
    seen.dedup();
    let mut expected: Vec<String> = (0..25).map(|i| format!("r{i}")).collect();
    expected.sort();
    assert_eq!(seen, expected);

    assert_eq!(
        app.get("/real-time-fs/list?cursor=minus-one")
            .await
            .status(),
        400
    );
    assert_eq!(app.get("/real-time-fs/list?view=dish").await.status(), 404);
    assert_eq!(app.get("/real-time-fs/list?view=raw_*").await.status(), 400);
    app.cleanup().await;
}

#[tokio::test]
async fn probes_and_documentation_answer() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.get("/health").await.json::<Value>().await.unwrap(),
        json!({"status": "ok"})
    );
    assert_eq!(
        app.get("/ready").await.json::<Value>().await.unwrap(),
        json!({"status": "ready"})
    );

    let spec: Value = app.get_json("/openapi.json").await;
    for path in [
        "/order-event/",
        "/status-event/",
        "/restaurant-event/",
        "/consumer-event/",
        "/v1/events/{source}",
        "/real-time-fs/get/{feature_name}/{key}",
        "/real-time-fs/list",
        "/health",
        "/ready",
    ] {
        assert!(spec["paths"][path].is_object(), "{path} undocumented");
    }
    assert!(spec["components"]["schemas"]["OrderEvent"].is_object());
    assert!(spec["components"]["securitySchemes"]["bearer"].is_object());

    let ui = app.get("/docs/").await;
    assert_eq!(ui.status(), 200);
    assert!(ui.text().await.unwrap().contains("swagger"));
    let missing = app.get("/no/such/route").await;
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.json::<Value>().await.unwrap()["code"],
        "route_not_found"
    );
    app.cleanup().await;
}
