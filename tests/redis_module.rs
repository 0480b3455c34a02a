//! larder's Redis module (crates/redis-module) stores exactly what the ingest script stores: the
//! same events, sent in the same order to an API on a Redis with the module loaded and to one on
//! a Redis without it, end in the same keys with the same contents. `make test` starts the
//! module's Redis (`deploy/local/ensure-redis-module.sh`, 127.0.0.1:6380) and a replica of it
//! without the module (127.0.0.1:6381): the module's writes reach it as plain commands.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use deadpool_redis::redis;
use larder_api::Settings;
use larder_domain::{Tier, Tile, Timestamp, field};
use larder_e2e::{
    TestApp, consumer_event, module_redis_url, module_replica_url, order_event, restaurant_event,
    status_event, test_settings,
};
use serde_json::Value;
use std::collections::BTreeSet;

/// January 2019, `minutes` after its start, as the sources write times.
fn at(minutes: u64) -> String {
    let (day, rest) = (1 + minutes / 1440, minutes % 1440);
    format!("2019-01-{day:02}T{:02}:{:02}:00.000Z", rest / 60, rest % 60)
}

const ORDERS: u64 = 600;

fn order(i: u64) -> Value {
    let amount = 10.5 + ((i * 37) % 90) as f64;
    order_event(
        &format!("O{i}"),
        &format!("R{}", i % 5),
        &format!("C{}", i % 40),
        amount,
        &at(i * 67),
    )
}

/// Every order is placed a minute after it is created; one in seven is cancelled, the rest
/// concluded half an hour later.
fn statuses(orders: std::ops::Range<u64>) -> Vec<Value> {
    orders
        .flat_map(|i| {
            let (order, t) = (format!("O{i}"), i * 67);
            let end = if i % 7 == 0 { "CANCELLED" } else { "CONCLUDED" };
            [
                status_event(&format!("S{i}a"), &order, "PLACED", &at(t + 1)),
                status_event(&format!("S{i}b"), &order, end, &at(t + 30)),
            ]
        })
        .collect()
}

/// Posts the same sequence to `app`: statuses ahead of their orders (they wait for them), the
/// orders (four weeks, five restaurants: tiles of every span, pruning, distinct sets), the
/// other statuses, consumers and restaurants, then duplicates and one order's update.
async fn ingest(app: &TestApp) -> Vec<(u64, u64, u64)> {
    let orders: Vec<Value> = (0..ORDERS).map(order).collect();
    let consumers: Vec<Value> = (0..40).map(|c| consumer_event(&format!("C{c}"))).collect();
    let restaurants: Vec<Value> = (0..5)
        .map(|r| restaurant_event(&format!("R{r}"), 40.0 + r as f64))
        .collect();
    let mut updated = order(5);
    updated["order_total_amount"] = Value::from(99.0);
    vec![
        app.post_batches("status", &statuses(0..50)).await,
        app.post_batches("order", &orders).await,
        app.post_batches("status", &statuses(50..ORDERS)).await,
        app.post_batches("consumer", &consumers).await,
        app.post_batches("restaurant", &restaurants).await,
        app.post_batches("status", &statuses(0..100)).await,
        app.post_batches("order", &[updated]).await,
    ]
}

async fn module_calls(url: &str) -> u64 {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .unwrap();
    stats
        .lines()
        .find_map(|line| line.strip_prefix("cmdstat_larder.ingest:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |calls| calls.parse().unwrap())
}

async fn has_module(url: &str) -> bool {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let info: Vec<redis::Value> = redis::cmd("COMMAND")
        .arg("INFO")
        .arg("LARDER.INGEST")
        .query_async(&mut conn)
        .await
        .unwrap();
    info.first().is_some_and(|v| *v != redis::Value::Nil)
}

/// An application with `settings` on the Redis that has the module loaded.
async fn spawn_on_module(mut settings: Settings) -> TestApp {
    settings.redis.url = module_redis_url();
    let module = TestApp::spawn_inspecting(settings.clone(), &settings.redis.url).await;
    assert!(
        has_module(&settings.redis.url).await,
        "{} has no LARDER.INGEST: start it with deploy/local/ensure-redis-module.sh",
        settings.redis.url
    );
    module
}

#[tokio::test]
async fn the_module_stores_exactly_what_the_script_stores() {
    let script = TestApp::spawn().await;
    assert!(
        !has_module(&script.settings.redis.url).await,
        "the script's Redis must not have the module"
    );
    let module = spawn_on_module(test_settings()).await;

    let calls_before = module_calls(&module.settings.redis.url).await;
    let answers = ingest(&script).await;
    assert_eq!(ingest(&module).await, answers);
    assert!(module_calls(&module.settings.redis.url).await > calls_before);
    // Every event accepted once; the repeated statuses are duplicates.
    let accepted: u64 = answers.iter().map(|a| a.0).sum();
    let duplicate: u64 = answers.iter().map(|a| a.1).sum();
    assert_eq!(
        (accepted, duplicate),
        (2 * ORDERS + ORDERS + 40 + 5 + 1, 200)
    );

    let stored = script.dump().await;
    assert!(
        stored
            .iter()
            .any(|(key, _)| key.starts_with("{rtf_restaurant:R0}:h")),
        "no hour tiles: the comparison would miss the tile merge"
    );
    assert!(
        stored
            .iter()
            .any(|(key, _)| key.starts_with("{rtf_restaurant:R0}:d:")),
        "no distinct set"
    );
    let natively = module.dump().await;
    assert_same_keys(&stored, &natively);
    script.cleanup().await;
    module.cleanup().await;
}

/// Two restaurants' orders: RL's one every 50 minutes for 60 days (from three consumers), so
/// every hour has a tile and each weekly prune of its hour tier (30-day windows: 888 hours kept)
/// deletes a week of tiles by name, while its minute tier (a few hundred tiles) is walked; RS's
/// every three days and then after 40 days, so each of its orders finds every tile it holds
/// behind the line (2 days of minutes kept, 37 of hours) and starts its hashes again.
#[tokio::test]
async fn pruning_leaves_exactly_the_tiles_a_walk_of_every_prune_leaves() {
    let script = TestApp::spawn().await;
    let module = spawn_on_module(test_settings()).await;
    let start = Timestamp::parse_rfc3339("2019-01-01T00:00:00.000Z")
        .unwrap()
        .millis();
    let (minute, day) = (60_000, 86_400_000);
    let busy: Vec<i64> = (0..1728).map(|i| start + i * 50 * minute).collect();
    let mut sparse: Vec<i64> = (0..12)
        .map(|i| start + i * (3 * day + 7 * minute))
        .collect();
    let back = sparse[11] + 40 * day;
    sparse.extend((0..3).map(|i| back + i * 3 * day));
    let restaurants = [("RL", busy), ("RS", sparse)];
    let orders: Vec<Value> = restaurants
        .iter()
        .flat_map(|(restaurant, times)| times.iter().map(move |&t| (t, *restaurant)))
        .enumerate()
        .map(|(i, (t, restaurant))| {
            let at = Timestamp::from_millis(t).unwrap().to_string();
            let amount = 20.0 + (i % 13) as f64;
            order_event(
                &format!("L{i}"),
                restaurant,
                &format!("CL{}", i % 3),
                amount,
                &at,
            )
        })
        .collect();
    let answer = script.post_batches("order", &orders).await;
    assert_eq!(answer, (orders.len() as u64, 0, 0));
    assert_eq!(module.post_batches("order", &orders).await, answer);

    let stored = script.dump().await;
    assert_same_keys(&stored, &module.dump().await);
    let views = script.settings.features.load_views().unwrap();
    let retention = |tier| views.view("restaurant").unwrap().retention(tier);
    for ((restaurant, times), tier) in restaurants.iter().flat_map(|r| Tier::ALL.map(|t| (r, t))) {
        let key = format!("{{rtf_restaurant:{restaurant}}}:{}", tier.tag());
        let (_, hash) = stored.iter().find(|(k, _)| *k == key).unwrap();
        let hash: serde_json::Map<String, Value> = serde_json::from_str(hash).unwrap();
        let kept: BTreeSet<&str> = hash
            .keys()
            .map(String::as_str)
            .filter(|f| *f != "_")
            .collect();
        let (walked, written) = walked_tiles(tier, retention(tier), times);
        assert!(
            walked.len() < written,
            "{key}: nothing pruned, nothing tested"
        );
        let walked: BTreeSet<&str> = walked.iter().map(String::as_str).collect();
        assert!(
            kept == walked,
            "{key}: tiles a walk would have deleted {:?}, and kept {:?}",
            kept.difference(&walked).collect::<Vec<_>>(),
            walked.difference(&kept).collect::<Vec<_>>(),
        );
    }
    script.cleanup().await;
    module.cleanup().await;
}

/// The tiles of `tier` that events at `times` (ascending) leave when every prune walks the hash
/// and deletes those starting at or behind its line — the script's pruning before it deleted by
/// name — and how many tiles they wrote in all.
fn walked_tiles(tier: Tier, retention: i64, times: &[i64]) -> (BTreeSet<String>, usize) {
    let (mut tiles, mut written) = (BTreeSet::new(), BTreeSet::new());
    let mut newest: Option<i64> = None;
    for bucket in times.iter().map(|&t| tier.bucket(t)) {
        for &span in tier.spans() {
            let tile = Tile::containing(span, bucket);
            tiles.insert(tile);
            written.insert(tile);
        }
        let every = tier.prune_every();
        if newest.is_some_and(|newest| bucket.div_euclid(every) > newest.div_euclid(every)) {
            tiles.retain(|tile: &Tile| tile.first_behind() >= bucket - retention);
        }
        newest = Some(bucket);
    }
    (tiles.into_iter().map(field::tile).collect(), written.len())
}

#[tokio::test]
async fn the_module_replaces_a_record_that_outlived_its_marker() {
    let mut settings = test_settings();
    settings.redis.dedupe_ttl_secs = 3600;
    let module = spawn_on_module(settings).await;
    module
        .assert_replaces_a_record_that_outlived_its_marker()
        .await;
    module.cleanup().await;
}

#[tokio::test]
async fn the_module_expires_raw_hashes_through_the_queue() {
    let mut settings = test_settings();
    settings.redis.raw_ttl_secs = 1;
    let module = spawn_on_module(settings).await;
    module.assert_raw_hashes_expire_through_the_queue().await;
    assert_the_replica_holds_exactly_what(&module).await;
    module.cleanup().await;
}

/// The module writes through the key API, and passes each write on as the command it stands
/// for, with the expiry time and the stream id it took.
#[tokio::test]
async fn a_replica_without_the_module_holds_exactly_what_the_module_stored() {
    let mut settings = test_settings();
    (settings.redis.raw_ttl_secs, settings.redis.dedupe_ttl_secs) = (60, 3600);
    let module = spawn_on_module(settings).await;
    ingest(&module).await;
    let stored = assert_the_replica_holds_exactly_what(&module).await;
    for kind in ["raw_order:", "seen:order:"] {
        assert!(
            stored
                .iter()
                .any(|(key, content)| key.starts_with(kind) && !content.ends_with(",-1]")),
            "no {kind} key with an expiry time: the comparison would miss them"
        );
    }
    module.cleanup().await;
}

/// Waits until the replica of the module's Redis has every write so far, and compares all the
/// keys of `module`'s test there and here, exactly; answers them.
async fn assert_the_replica_holds_exactly_what(module: &TestApp) -> Vec<(String, String)> {
    let replica_url = module_replica_url();
    assert!(
        !has_module(&replica_url).await,
        "{replica_url} must be a replica without the module"
    );
    let client = redis::Client::open(module_redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let replicas: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(10_000)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        replicas, 1,
        "no replica at {replica_url}: start it with deploy/local/ensure-redis-module.sh"
    );
    let stored = module.exact_dump().await;
    assert!(!stored.is_empty());
    let replicated = module.at_replica(&replica_url).await.exact_dump().await;
    assert_same_keys(&stored, &replicated);
    stored
}

/// Two dumps hold the same keys with the same contents; a difference names its key.
fn assert_same_keys(expected: &[(String, String)], found: &[(String, String)]) {
    assert_eq!(expected.len(), found.len());
    for ((key, content), (found_key, found_content)) in expected.iter().zip(found) {
        assert_eq!(key, found_key);
        assert_eq!(content, found_content, "{key}");
    }
}

#[tokio::test]
async fn the_module_gives_raw_hashes_their_ttl_while_markers_expire() {
    let mut settings = test_settings();
    (settings.redis.raw_ttl_secs, settings.redis.dedupe_ttl_secs) = (60, 3600);
    let module = spawn_on_module(settings).await;
    module
        .assert_raw_hashes_expire_by_their_ttl_while_markers_expire()
        .await;
    module.cleanup().await;
}

#[tokio::test]
async fn the_module_versions_what_a_failed_call_wrote() {
    let module = spawn_on_module(test_settings()).await;
    module.assert_a_failed_call_versions_what_it_wrote().await;
    module.cleanup().await;
}
