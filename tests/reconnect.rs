//! Redis closing the API's connections (a restart, a proxy's idle timeout): the next requests go
//! on over fresh connections, without an error and without counting an event twice. Alone in its
//! test binary because it closes every connection to the test Redis.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use larder_e2e::{TestApp, order_event, restaurant_event};
use serde_json::Value;

#[tokio::test]
async fn requests_go_on_after_redis_drops_every_connection() {
    let app = TestApp::spawn().await;
    let at = |minute: u32| format!("2019-01-20T10:{minute:02}:00.000Z");
    // Enough requests to open every shared connection of both stores.
    for i in 0..8 {
        let order = order_event(&format!("o{i}"), "r1", "c1", 10.0, &at(i));
        assert!(
            app.post_json("/order-event/", &order)
                .await
                .status()
                .is_success()
        );
        assert_eq!(
            app.get("/real-time-fs/get/restaurant/r1").await.status(),
            200
        );
    }

    app.drop_other_connections().await;

    for i in 8..16 {
        let order = order_event(&format!("o{i}"), "r1", "c1", 10.0, &at(i));
        let sent = app.post_json("/order-event/", &order).await;
        assert!(sent.status().is_success(), "order {i}: {}", sent.status());
        let looked_up = app.get("/real-time-fs/get/restaurant/r1").await;
        assert_eq!(looked_up.status(), 200, "lookup after order {i}");
    }
    let ingested = app
        .post_json("/restaurant-event/", &restaurant_event("r1", 60.0))
        .await;
    assert!(ingested.status().is_success());

    let answer: Value = app
        .get_json("/real-time-fs/get/restaurant/r1?as_of=2019-01-20T10:15:00.000Z")
        .await;
    assert_eq!(answer["value"]["orders_1h"], 16, "every order counted once");
    assert_eq!(answer["value"]["avg_ticket"], 60.0);
}
