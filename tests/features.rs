//! Feature views against real Redis: values for the iFood samples checked against values computed
//! here from the same rows, the status → order → restaurant join, order independence, max age,
//! pruning, and the batch lookup route.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use larder_domain::{Tier, Tile, Timestamp, field};
use larder_e2e::{
    TestApp, order_event, read_csv_events, restaurant_event, samples_dir, status_event,
    test_settings,
};
use serde_json::{Value, json};

fn ms(text: &str) -> i64 {
    Timestamp::parse_rfc3339(text).unwrap().millis()
}

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// `POST /v1/features/online`, answered as column name → values.
async fn online(
    app: &TestApp,
    features: &[&str],
    key: &str,
    keys: &[String],
    as_of: Option<&str>,
) -> HashMap<String, Vec<Value>> {
    let mut request = json!({"features": features, "entities": {key: keys}});
    if let Some(as_of) = as_of {
        request["as_of"] = json!(as_of);
    }
    let response = app.post_json("/v1/features/online", &request).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let names = body["metadata"]["feature_names"].as_array().unwrap();
    names
        .iter()
        .zip(body["results"].as_array().unwrap())
        .map(|(name, result)| {
            (
                name.as_str().unwrap().to_owned(),
                result["values"].as_array().unwrap().clone(),
            )
        })
        .collect()
}

fn assert_close(actual: &Value, expected: Option<f64>, context: &str) {
    match (actual.as_f64(), expected) {
        (Some(a), Some(e)) => assert!(
            (a - e).abs() <= 1e-9 * e.abs().max(1.0),
            "{context}: {a} != {e}"
        ),
        (None, None) => assert!(actual.is_null(), "{context}: {actual}"),
        _ => panic!("{context}: got {actual}, expected {expected:?}"),
    }
}

struct Order {
    merchant: String,
    customer: Option<String>,
    amount: f64,
    at: i64,
    at_text: String,
    platform: String,
}

fn orders_of(rows: &[Value]) -> Vec<Order> {
    rows.iter()
        .map(|r| Order {
            merchant: r["merchant_id"].as_str().unwrap().to_owned(),
            customer: r
                .get("customer_id")
                .and_then(Value::as_str)
                .map(str::to_owned),
            amount: r["order_total_amount"].as_str().unwrap().parse().unwrap(),
            at: ms(r["order_created_at"].as_str().unwrap()),
            at_text: r["order_created_at"].as_str().unwrap().to_owned(),
            platform: r["origin_platform"].as_str().unwrap().to_owned(),
        })
        .collect()
}

#[tokio::test]
async fn sample_features_match_values_computed_from_the_rows() {
    let Some(dir) = samples_dir() else {
        eprintln!("skipped: ../shared/ifood-sample not found (set LARDER_SAMPLES_DIR)");
        return;
    };
    let order_rows = read_csv_events(&dir.join("order_sample.csv"));
    let restaurant_rows = read_csv_events(&dir.join("restaurant.csv"));
    let status_rows = read_csv_events(&dir.join("status_sample.csv"));
    let app = TestApp::spawn().await;
    app.post_batches("restaurant", &restaurant_rows).await;
    app.post_batches("order", &order_rows).await;
    app.post_batches("status", &status_rows).await;
    let orders = orders_of(&order_rows);

    let mut merchants: Vec<String> = orders
        .iter()
        .map(|o| o.merchant.clone())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    merchants.sort();
    let mut customers: Vec<String> = orders
        .iter()
        .filter_map(|o| o.customer.clone())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    customers.sort();

    // Windows at two instants on hour boundaries, where (t - w, t] is exact.
    // Both within the minute tier's retention: 25 h behind each entity's newest event.
    for as_of in ["2019-01-31T12:00:00.000Z", "2019-02-01T00:00:00.000Z"] {
        let t = ms(as_of);
        let inside = |o: &Order, w: i64| t - w < o.at && o.at <= t;
        let features = [
            "restaurant:orders_1h",
            "restaurant:orders_24h",
            "restaurant:orders_7d",
            "restaurant:orders_30d",
            "restaurant:revenue_24h",
            "restaurant:revenue_30d",
            "restaurant:avg_order_30d",
            "restaurant:max_order_30d",
            "restaurant:customers_30d",
        ];
        let got = online(&app, &features, "merchant_id", &merchants, Some(as_of)).await;
        for (row, merchant) in merchants.iter().enumerate() {
            let mine: Vec<&Order> = orders.iter().filter(|o| &o.merchant == merchant).collect();
            let count = |w: i64| mine.iter().filter(|o| inside(o, w)).count();
            let sum = |w: i64| {
                mine.iter()
                    .filter(|o| inside(o, w))
                    .map(|o| o.amount)
                    .sum::<f64>()
            };
            let context = format!("{merchant} at {as_of}");
            for (feature, w) in [
                ("orders_1h", HOUR),
                ("orders_24h", DAY),
                ("orders_7d", 7 * DAY),
                ("orders_30d", 30 * DAY),
            ] {
                assert_eq!(
                    got[&format!("restaurant:{feature}")][row],
                    json!(count(w)),
                    "{feature} {context}"
                );
            }
            assert_close(
                &got["restaurant:revenue_24h"][row],
                Some(sum(DAY)),
                &format!("revenue_24h {context}"),
            );
            assert_close(
                &got["restaurant:revenue_30d"][row],
                Some(sum(30 * DAY)),
                &format!("revenue_30d {context}"),
            );
            let n30 = count(30 * DAY);
            assert_close(
                &got["restaurant:avg_order_30d"][row],
                (n30 > 0).then(|| sum(30 * DAY) / n30 as f64),
                &context,
            );
            let max = mine
                .iter()
                .filter(|o| inside(o, 30 * DAY))
                .map(|o| o.amount)
                .reduce(f64::max);
            assert_close(
                &got["restaurant:max_order_30d"][row],
                max,
                &format!("max_order_30d {context}"),
            );
            let distinct: HashSet<&str> = mine
                .iter()
                .filter(|o| inside(o, 30 * DAY))
                .filter_map(|o| o.customer.as_deref())
                .collect();
            assert_eq!(
                got["restaurant:customers_30d"][row],
                json!(distinct.len()),
                "customers_30d {context}"
            );
        }

        let got = online(
            &app,
            &[
                "consumer:orders_7d",
                "consumer:orders_30d",
                "consumer:spent_30d",
                "consumer:restaurants_30d",
            ],
            "customer_id",
            &customers,
            Some(as_of),
        )
        .await;
        for (row, customer) in customers.iter().enumerate() {
            let mine: Vec<&Order> = orders
                .iter()
                .filter(|o| o.customer.as_ref() == Some(customer))
                .collect();
            let context = format!("{customer} at {as_of}");
            assert_eq!(
                got["consumer:orders_7d"][row],
                json!(mine.iter().filter(|o| inside(o, 7 * DAY)).count()),
                "{context}"
            );
            assert_eq!(
                got["consumer:orders_30d"][row],
                json!(mine.iter().filter(|o| inside(o, 30 * DAY)).count()),
                "{context}"
            );
            assert_close(
                &got["consumer:spent_30d"][row],
                Some(
                    mine.iter()
                        .filter(|o| inside(o, 30 * DAY))
                        .map(|o| o.amount)
                        .sum(),
                ),
                &context,
            );
            let places: HashSet<&str> = mine
                .iter()
                .filter(|o| inside(o, 30 * DAY))
                .map(|o| o.merchant.as_str())
                .collect();
            assert_eq!(
                got["consumer:restaurants_30d"][row],
                json!(places.len()),
                "{context}"
            );
        }
    }

    // Lifetime and `last` features at the default as_of (the newest event the store has seen).
    let got = online(
        &app,
        &[
            "consumer:orders_lifetime",
            "consumer:spent_lifetime",
            "consumer:avg_ticket",
            "consumer:last_order_at",
            "consumer:preferred_platform",
        ],
        "customer_id",
        &customers,
        None,
    )
    .await;
    for (row, customer) in customers.iter().enumerate() {
        let mine: Vec<&Order> = orders
            .iter()
            .filter(|o| o.customer.as_ref() == Some(customer))
            .collect();
        let spent: f64 = mine.iter().map(|o| o.amount).sum();
        assert_eq!(got["consumer:orders_lifetime"][row], json!(mine.len()));
        assert_close(&got["consumer:spent_lifetime"][row], Some(spent), customer);
        assert_close(
            &got["consumer:avg_ticket"][row],
            Some(spent / mine.len() as f64),
            customer,
        );
        let last = mine.iter().max_by_key(|o| o.at).unwrap();
        assert_eq!(got["consumer:last_order_at"][row], json!(last.at_text));
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for o in &mine {
            *counts.entry(o.platform.as_str()).or_default() += 1;
        }
        let top = counts.values().max().unwrap();
        let preferred = counts.iter().find(|(_, n)| *n == top).unwrap().0;
        assert_eq!(
            got["consumer:preferred_platform"][row],
            json!(preferred),
            "{customer}"
        );
    }

    let ids: Vec<String> = restaurant_rows
        .iter()
        .take(500)
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    let got = online(
        &app,
        &[
            "restaurant:avg_ticket",
            "restaurant:price_range",
            "restaurant:delivery_time",
            "restaurant:enabled",
        ],
        "merchant_id",
        &ids,
        None,
    )
    .await;
    for (row, r) in restaurant_rows.iter().take(500).enumerate() {
        assert_close(
            &got["restaurant:avg_ticket"][row],
            r["average_ticket"].as_str().map(|v| v.parse().unwrap()),
            "avg_ticket",
        );
        assert_eq!(
            got["restaurant:price_range"][row],
            json!(r["price_range"].as_str().unwrap().parse::<i64>().unwrap())
        );
        let delivery = r
            .get("delivery_time")
            .map(|v| json!(v.as_str().unwrap().parse::<i64>().unwrap()));
        assert_eq!(
            got["restaurant:delivery_time"][row],
            delivery.unwrap_or(Value::Null)
        );
        assert_eq!(
            got["restaurant:enabled"][row],
            json!(r["enabled"] == "true")
        );
    }

    // Order statuses: the newest by event time (ties: the later row), and each status's time.
    let mut by_order: BTreeMap<String, Vec<(i64, String, String)>> = BTreeMap::new();
    for s in &status_rows {
        let at = s["created_at"].as_str().unwrap();
        by_order
            .entry(s["order_id"].as_str().unwrap().to_owned())
            .or_default()
            .push((
                ms(at),
                s["value"].as_str().unwrap().to_owned(),
                at.to_owned(),
            ));
    }
    let order_ids: Vec<String> = by_order.keys().cloned().collect();
    let got = online(
        &app,
        &[
            "order:last_status",
            "order:last_status_at",
            "order:placed_at",
            "order:minutes_to_conclude",
        ],
        "order_id",
        &order_ids,
        None,
    )
    .await;
    for (row, id) in order_ids.iter().enumerate() {
        let statuses = &by_order[id];
        let mut last = &statuses[0];
        for s in statuses {
            if s.0 >= last.0 {
                last = s;
            }
        }
        assert_eq!(got["order:last_status"][row], json!(last.1), "{id}");
        assert_eq!(got["order:last_status_at"][row], json!(last.2), "{id}");
        let time_of = |value: &str| statuses.iter().filter(|s| s.1 == value).map(|s| s.0).max();
        assert_eq!(
            got["order:placed_at"][row].is_null(),
            time_of("PLACED").is_none(),
            "{id}"
        );
        let minutes = time_of("PLACED")
            .zip(time_of("CONCLUDED"))
            .map(|(p, c)| (c - p) as f64 / 60_000.0);
        assert_close(&got["order:minutes_to_conclude"][row], minutes, id);
    }
    app.cleanup().await;
}

fn cancelled_rate(answer: &Value) -> (Value, Value) {
    (
        answer["value"]["cancellations_7d"].clone(),
        answer["value"]["cancel_rate_7d"].clone(),
    )
}

#[tokio::test]
async fn a_status_that_arrives_before_its_order_counts_once_the_order_arrives() {
    let app = TestApp::spawn().await;
    let at = "2019-01-19T10:00:00.000Z";
    app.post_json(
        "/status-event/",
        &status_event("s1", "o1", "CANCELLED", "2019-01-19T10:05:00.000Z"),
    )
    .await;
    assert_eq!(
        app.get("/real-time-fs/get/restaurant/r1").await.status(),
        404
    );
    assert!(
        app.keys()
            .await
            .contains(&"{rtf_order:o1}:pending:restaurant".to_owned())
    );

    app.post_json("/order-event/", &order_event("o1", "r1", "c1", 10.0, at))
        .await;
    app.post_json(
        "/order-event/",
        &order_event("o2", "r1", "c2", 30.0, "2019-01-19T11:00:00.000Z"),
    )
    .await;
    let answer: Value = app.get_json("/real-time-fs/get/restaurant/r1").await;
    assert_eq!(cancelled_rate(&answer), (json!(1), json!(0.5)));
    assert!(
        !app.keys()
            .await
            .contains(&"{rtf_order:o1}:pending:restaurant".to_owned())
    );

    // Resending changes nothing; a status of a known order applies at once.
    app.post_json(
        "/status-event/",
        &status_event("s1", "o1", "CANCELLED", "2019-01-19T10:05:00.000Z"),
    )
    .await;
    app.post_json(
        "/status-event/",
        &status_event("s2", "o2", "CANCELLED", "2019-01-19T11:30:00.000Z"),
    )
    .await;
    let answer: Value = app.get_json("/real-time-fs/get/restaurant/r1").await;
    assert_eq!(cancelled_rate(&answer), (json!(2), json!(1.0)));
    let order: Value = app.get_json("/real-time-fs/get/order/o1").await;
    assert_eq!(order["value"]["last_status"], "CANCELLED");
    assert_eq!(order["value"]["cancelled_at"], "2019-01-19T10:05:00.000Z");
    app.cleanup().await;
}

/// A deterministic shuffle (no rand dependency): a linear congruential generator.
fn shuffled<T: Clone>(items: &[T], seed: u64) -> Vec<T> {
    let mut items = items.to_vec();
    let mut state = seed;
    for i in (1..items.len()).rev() {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        items.swap(i, (state >> 33) as usize % (i + 1));
    }
    items
}

#[tokio::test]
async fn shuffled_and_repeated_ingests_end_in_the_same_features() {
    let mut events: Vec<(&str, Value)> = Vec::new();
    let base = ms("2019-01-10T00:00:00.000Z");
    for i in 0..300_i64 {
        let at = Timestamp::from_millis(base + i * 37 * 60_000 + i * 1_000)
            .unwrap()
            .to_string();
        let order = format!("o{i}");
        events.push((
            "order",
            order_event(
                &order,
                &format!("r{}", i % 7),
                &format!("c{}", i % 23),
                (i % 50) as f64 + 0.25,
                &at,
            ),
        ));
        let value = if i % 5 == 0 { "CANCELLED" } else { "CONCLUDED" };
        events.push(("status", status_event(&format!("s{i}"), &order, value, &at)));
    }
    for r in 0..7 {
        events.push((
            "restaurant",
            restaurant_event(&format!("r{r}"), 10.0 + f64::from(r)),
        ));
    }
    let in_order = TestApp::spawn().await;
    for (source, event) in &events {
        in_order
            .post_json(&format!("/v1/events/{source}"), &json!([event]))
            .await;
    }
    let mixed = TestApp::spawn().await;
    let twice: Vec<(&str, Value)> = events.iter().chain(events.iter()).cloned().collect();
    for (source, event) in shuffled(&twice, 42) {
        mixed
            .post_json(&format!("/v1/events/{source}"), &json!([event]))
            .await;
    }
    let views = [
        (
            "restaurant",
            "merchant_id",
            (0..7).map(|i| format!("r{i}")).collect::<Vec<_>>(),
        ),
        (
            "consumer",
            "customer_id",
            (0..23).map(|i| format!("c{i}")).collect(),
        ),
        (
            "order",
            "order_id",
            (0..300).map(|i| format!("o{i}")).collect(),
        ),
    ];
    for (view, key, keys) in &views {
        for as_of in [None, Some("2019-01-15T00:00:00.000Z")] {
            let a = online(&in_order, &[view], key, keys, as_of).await;
            let b = online(&mixed, &[view], key, keys, as_of).await;
            assert_eq!(a, b, "{view} at {as_of:?}");
        }
    }
    let restaurant: Value = in_order.get_json("/real-time-fs/get/restaurant/r0").await;
    assert!(
        restaurant["value"]["cancellations_7d"].as_u64().unwrap() > 0,
        "the join fed nothing"
    );
    in_order.cleanup().await;
    mixed.cleanup().await;
}

#[tokio::test]
async fn the_batch_lookup_answers_in_feasts_shape_and_refuses_bad_requests() {
    let mut settings = test_settings();
    settings.server.max_lookup_entities = 3;
    let app = TestApp::spawn_with(settings).await;
    app.post_json("/restaurant-event/", &restaurant_event("r1", 60.0))
        .await;
    app.post_json(
        "/order-event/",
        &order_event("o1", "r1", "c1", 10.0, "2019-01-19T10:00:00.000Z"),
    )
    .await;

    let body: Value = app
        .post_json("/v1/features/online", &json!({"features": ["restaurant:orders_24h", "restaurant:avg_ticket"], "entities": {"merchant_id": ["r1", "nobody"]}}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["metadata"]["feature_names"],
        json!([
            "merchant_id",
            "restaurant:orders_24h",
            "restaurant:avg_ticket"
        ])
    );
    assert_eq!(body["metadata"]["as_of"], "2019-01-19T10:00:00.000Z");
    assert_eq!(body["results"][0]["values"], json!(["r1", "nobody"]));
    assert_eq!(body["results"][1]["values"], json!([1, null]));
    assert_eq!(
        body["results"][1]["statuses"],
        json!(["PRESENT", "NOT_FOUND"])
    );
    assert_eq!(
        body["results"][1]["event_timestamps"],
        json!(["2019-01-19T10:00:00.000Z", null])
    );
    assert_eq!(
        body["results"][2]["event_timestamps"][0],
        "2017-01-23T12:52:30.910Z"
    );

    let whole_view: Value = app
        .post_json(
            "/v1/features/online",
            &json!({"features": "restaurant", "entities": {"merchant_id": ["r1"]}}),
        )
        .await
        .json()
        .await
        .unwrap();
    // The key column and the view's 18 features.
    assert_eq!(whole_view["results"].as_array().unwrap().len(), 19);

    let cases = [
        (
            json!({"features": ["restaurant:nope"], "entities": {"merchant_id": ["r1"]}}),
            404,
            "unknown_feature",
        ),
        (
            json!({"features": ["consumer:orders_7d"], "entities": {"merchant_id": ["r1"]}}),
            422,
            "invalid_request",
        ),
        (
            json!({"features": ["restaurant"], "entities": {"merchant_id": ["a", "b", "c", "d"]}}),
            413,
            "payload_too_large",
        ),
        (
            json!({"features": ["restaurant"], "entities": {"merchant_id": ["a*"]}}),
            400,
            "invalid_name",
        ),
        (
            json!({"features": ["restaurant"], "entities": {"merchant_id": ["a"]}, "as_of": "soon"}),
            400,
            "invalid_query",
        ),
        (json!({"features": 7, "entities": {}}), 422, "invalid_body"),
        (json!({"features": ["restaurant"]}), 422, "invalid_body"),
    ];
    for (request, status, code) in cases {
        let response = app.post_json("/v1/features/online", &request).await;
        assert_eq!(response.status().as_u16(), status, "{request}");
        assert_eq!(
            response.json::<Value>().await.unwrap()["code"],
            code,
            "{request}"
        );
    }
    app.cleanup().await;
}

#[tokio::test]
async fn values_older_than_the_views_max_age_are_outside_max_age() {
    let path = std::env::temp_dir().join(format!("larder-max-age-{}.toml", std::process::id()));
    std::fs::write(
        &path,
        r#"
[[view]]
name = "ticket"
key = "order_id"
max_age = "1h"
[view.sources]
order = "order_id"
[[view.feature]]
name = "amount"
agg = "last"
source = "order"
field = "order_total_amount"
"#,
    )
    .unwrap();
    let mut settings = test_settings();
    settings.features.path = path.display().to_string();
    let app = TestApp::spawn_with(settings).await;
    app.post_json(
        "/order-event/",
        &order_event("o1", "r1", "c1", 12.5, "2019-01-19T10:00:00.000Z"),
    )
    .await;
    let ask = |as_of: &'static str| json!({"features": ["ticket:amount"], "entities": {"order_id": ["o1"]}, "as_of": as_of});
    for (as_of, status, value) in [
        ("2019-01-19T11:00:00.000Z", "PRESENT", json!(12.5)),
        ("2019-01-19T11:00:00.001Z", "OUTSIDE_MAX_AGE", Value::Null),
    ] {
        let body: Value = app
            .post_json("/v1/features/online", &ask(as_of))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            (
                body["results"][1]["statuses"][0].clone(),
                body["results"][1]["values"][0].clone()
            ),
            (json!(status), value),
            "{as_of}"
        );
    }
    std::fs::remove_file(&path).ok();
    app.cleanup().await;
}

#[tokio::test]
async fn minute_buckets_are_pruned_from_redis_as_event_time_moves_on() {
    let app = TestApp::spawn().await;
    let base = ms("2019-01-10T00:00:00.000Z");
    let day_one: Vec<Value> = (0..120)
        .map(|i| {
            order_event(
                &format!("o{i}"),
                "r1",
                "c1",
                1.0,
                &Timestamp::from_millis(base + i * 61_000)
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    app.post_json("/v1/events/order", &Value::from(day_one))
        .await;
    let tiles = app.hgetall("{rtf_restaurant:r1}:m").await;
    let expected: BTreeSet<String> = (0..120)
        .flat_map(|i| {
            let bucket = Tier::Minute.bucket(base + i * 61_000);
            Tier::Minute
                .spans()
                .iter()
                .map(move |&span| field::tile(Tile::containing(span, bucket)))
        })
        .collect();
    assert_eq!(
        tiles
            .keys()
            .filter(|f| *f != "_")
            .cloned()
            .collect::<BTreeSet<_>>(),
        expected,
        "one field per tile of each span"
    );
    // Lookups ask for tiles a busy entity may not have: a hash table answers those in O(1).
    assert_eq!(app.encoding("{rtf_restaurant:r1}:m").await, "hashtable");
    let first_minute = field::tile(Tile::containing(1, Tier::Minute.bucket(base)));
    assert_eq!(
        field::unpack(tiles[&first_minute].as_str().unwrap()).count(),
        2,
        "a count and a sum packed in one field"
    );

    let later = Timestamp::from_millis(base + 3 * DAY).unwrap().to_string();
    app.post_json(
        "/order-event/",
        &order_event("late", "r1", "c1", 1.0, &later),
    )
    .await;
    assert_eq!(
        app.hgetall("{rtf_restaurant:r1}:m").await.len(),
        Tier::Minute.spans().len(),
        "three days on, the hash holds the late order's tiles only"
    );
    let answer: Value = app.get_json("/real-time-fs/get/restaurant/r1").await;
    assert_eq!(
        (
            answer["value"]["orders_24h"].clone(),
            answer["value"]["orders_7d"].clone()
        ),
        (json!(1), json!(121))
    );
    app.cleanup().await;
}

/// Distinct members older than the view's distinct retention (30 days and a week here) leave
/// Redis once the entity's newest event has moved past them; lookups never counted them.
#[tokio::test]
async fn distinct_members_are_forgotten_as_event_time_moves_on() {
    let app = TestApp::spawn().await;
    let base = ms("2019-01-10T00:00:00.000Z");
    let at = |offset: i64| Timestamp::from_millis(base + offset).unwrap().to_string();
    for (id, customer, offset) in [("o1", "c1", 0), ("o2", "c2", 30 * 60_000)] {
        app.post_json(
            "/order-event/",
            &order_event(id, "r1", customer, 1.0, &at(offset)),
        )
        .await;
    }
    let members = app
        .keys()
        .await
        .into_iter()
        .find(|k| k.starts_with("{rtf_restaurant:r1}:d:"));
    let members = members.expect("the restaurant's distinct customers");
    assert_eq!(app.members(&members).await, ["c1", "c2"]);

    app.post_json(
        "/order-event/",
        &order_event("o3", "r1", "c3", 1.0, &at(40 * DAY)),
    )
    .await;
    assert_eq!(app.members(&members).await, ["c3"], "c1 and c2 forgotten");
    let answer: Value = app.get_json("/real-time-fs/get/restaurant/r1").await;
    assert_eq!(answer["value"]["customers_30d"], json!(1));
    app.cleanup().await;
}

/// Lookups keep an entity's hash and window totals between lookups
/// (`server.lookup_cache_entities`): whatever changes the entity in between — an order older
/// than the clock, a status joined through its order, an update of the restaurant's record —
/// shows in the next answer of either route at the same `as_of`.
#[tokio::test]
async fn a_lookup_sees_every_change_since_the_previous_one() {
    let app = TestApp::spawn().await;
    let as_of = "2019-01-31T12:30:00.000Z";
    let path = format!("/real-time-fs/get/restaurant/r1?as_of={as_of}");
    let features = [
        "restaurant:orders_24h",
        "restaurant:customers_30d",
        "restaurant:cancel_rate_7d",
        "restaurant:avg_ticket",
    ];
    let both_routes = || async {
        let single: Value = app.get_json(&path).await;
        let batch = online(
            &app,
            &features,
            "merchant_id",
            &["r1".to_owned()],
            Some(as_of),
        )
        .await;
        let single = features.map(|f| single["value"][f.trim_start_matches("restaurant:")].clone());
        assert_eq!(
            single,
            features.map(|f| batch[f][0].clone()),
            "the routes agree"
        );
        single
    };

    app.post_json("/restaurant-event/", &restaurant_event("r1", 40.0))
        .await;
    let order = order_event("o1", "r1", "c1", 10.0, "2019-01-31T12:00:00.000Z");
    app.post_json("/order-event/", &order).await;
    for _ in 0..2 {
        assert_eq!(
            both_routes().await,
            [json!(1), json!(1), json!(0.0), json!(40.0)]
        );
    }
    let older = order_event("o2", "r1", "c2", 10.0, "2019-01-31T11:00:00.000Z");
    app.post_json("/order-event/", &older).await;
    assert_eq!(
        both_routes().await,
        [json!(2), json!(2), json!(0.0), json!(40.0)]
    );
    let cancelled = status_event("s1", "o2", "CANCELLED", "2019-01-31T12:10:00.000Z");
    app.post_json("/status-event/", &cancelled).await;
    assert_eq!(
        both_routes().await,
        [json!(2), json!(2), json!(0.5), json!(40.0)]
    );
    app.post_json("/restaurant-event/", &restaurant_event("r1", 55.5))
        .await;
    assert_eq!(
        both_routes().await,
        [json!(2), json!(2), json!(0.5), json!(55.5)]
    );
    app.cleanup().await;
}

/// An entity's version only grows, even when the counter goes back (as in a Redis restored from
/// an older snapshot): a version handed out twice could match totals a lookup kept of other
/// content.
#[tokio::test]
async fn entity_versions_grow_even_when_the_counter_goes_back() {
    let app = TestApp::spawn().await;
    let version = || async {
        let version = app.get_string("{rtf_restaurant:r1}:v").await;
        version.unwrap().parse::<u64>().unwrap()
    };
    let at = "2019-01-31T12:00:00.000Z";
    app.post_json("/order-event/", &order_event("o1", "r1", "c1", 1.0, at))
        .await;
    let first = version().await;
    app.set("larder:version", "1").await;
    app.post_json("/order-event/", &order_event("o2", "r1", "c1", 1.0, at))
        .await;
    assert!(version().await > first);
    app.cleanup().await;
}
