//! When the Redis the API writes to loses larder's module (a failover to a server without it),
//! ingestion goes on with the script: the calls that met an unknown command ran nowhere, are sent
//! again as the script, and every event is accepted exactly once. A test binary of its own: it
//! unloads the module that tests/redis_module.rs uses, and test binaries run one at a time.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use deadpool_redis::redis;
use larder_e2e::{TestApp, module_redis_url, order_event, test_settings};
use serde_json::Value;

fn orders(from: u64, to: u64) -> Vec<Value> {
    (from..to)
        .map(|i| {
            order_event(
                &format!("F{i}"),
                "R1",
                "C1",
                20.0,
                "2019-01-02T10:00:00.000Z",
            )
        })
        .collect()
}

async fn module_path(conn: &mut redis::aio::MultiplexedConnection) -> Option<String> {
    let modules: Vec<Vec<redis::Value>> = redis::cmd("MODULE")
        .arg("LIST")
        .query_async(conn)
        .await
        .unwrap();
    modules.into_iter().find_map(|fields| {
        let text = |v: &redis::Value| redis::from_redis_value::<String>(v.clone()).ok();
        let pairs: Vec<Option<String>> = fields.iter().map(text).collect();
        let name = pairs.iter().position(|f| f.as_deref() == Some("name"))?;
        let path = pairs.iter().position(|f| f.as_deref() == Some("path"))?;
        (pairs.get(name + 1)?.as_deref() == Some("larder")).then(|| pairs.get(path + 1)?.clone())?
    })
}

#[tokio::test]
async fn ingestion_falls_back_to_the_script_when_the_module_goes() {
    let mut settings = test_settings();
    settings.redis.url = module_redis_url();
    let app = TestApp::spawn_inspecting(settings.clone(), &settings.redis.url).await;
    let client = redis::Client::open(app.settings.redis.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let path = module_path(&mut conn)
        .await
        .expect("the module's Redis has no larder module: run deploy/local/ensure-redis-module.sh");

    assert_eq!(
        app.post_batches("order", &orders(0, 300)).await,
        (300, 0, 0)
    );
    let _: () = redis::cmd("MODULE")
        .arg("UNLOAD")
        .arg("larder")
        .query_async(&mut conn)
        .await
        .unwrap();
    let after = app.post_batches("order", &orders(0, 600)).await;
    let _: () = redis::cmd("MODULE")
        .arg("LOAD")
        .arg(&path)
        .query_async(&mut conn)
        .await
        .unwrap();

    // The first 300 were stored by the module, the next 300 by the script.
    assert_eq!(after, (300, 300, 0));
    assert_eq!(app.stream_len("events:order").await, 600);
    let restaurant = app.hgetall("rtf_restaurant:R1").await;
    assert_eq!(restaurant["id"], "R1");
    app.cleanup().await;
}
