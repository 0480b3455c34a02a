//! Helpers for the end-to-end tests: start the real application in-process on port 0 against the
//! real Redis, each test under its own key prefix, and read the iFood samples.

use std::{
    path::PathBuf,
    sync::atomic::{AtomicU32, Ordering},
};

use deadpool_redis::redis::{self, aio::MultiplexedConnection};
use larder_api::{Application, Settings};
use serde_json::{Map, Value};

/// The Redis database the tests use, so they never touch the data of `make run` (db 0).
pub fn test_redis_url() -> String {
    std::env::var("LARDER_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/9".into())
}

/// The second Redis, with larder's module loaded (`deploy/local/ensure-redis-module.sh`).
pub fn module_redis_url() -> String {
    std::env::var("LARDER_TEST_MODULE_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6380/9".into())
}

/// A replica of the second Redis, without the module (`deploy/local/ensure-redis-module.sh`).
pub fn module_replica_url() -> String {
    std::env::var("LARDER_TEST_MODULE_REPLICA_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6381/9".into())
}

fn unique_prefix() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "test:{}:{}:{}:",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

/// Settings for a test: the project's defaults, port 0, the test database, a fresh key prefix.
pub fn test_settings() -> Settings {
    let mut settings = Settings::load().expect("default settings load");
    settings.server.bind = "127.0.0.1:0".into();
    settings.server.workers = 2;
    settings.redis.url = test_redis_url();
    settings.redis.key_prefix = unique_prefix();
    settings
}

async fn connect(redis_url: &str) -> MultiplexedConnection {
    let client = redis::Client::open(redis_url).expect("redis url");
    client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("the tests need Redis at {redis_url}: {e}"))
}

/// A running application and a way to look inside its Redis keys.
pub struct TestApp {
    pub address: String,
    pub prefix: String,
    pub settings: Settings,
    pub http: reqwest::Client,
    redis: MultiplexedConnection,
}

impl TestApp {
    /// The event log of this test's keys, as larder-worker reads it.
    pub fn event_log(&self) -> larder_redis::RedisEventLog {
        let pool = larder_redis::connect(&self.settings.redis).expect("Redis pool");
        larder_redis::RedisEventLog::new(pool, &self.settings.redis)
    }

    pub async fn spawn() -> Self {
        Self::spawn_with(test_settings()).await
    }

    pub async fn spawn_with(settings: Settings) -> Self {
        Self::spawn_inspecting(settings, &test_redis_url()).await
    }

    /// An application whose keys the test reads at `redis_url`: the Redis its settings name may
    /// be a proxy, or not running at all.
    pub async fn spawn_inspecting(settings: Settings, redis_url: &str) -> Self {
        let app = Application::build(&settings).expect("application builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        let redis = connect(redis_url).await;
        Self {
            address,
            prefix: settings.redis.key_prefix.clone(),
            settings,
            http: reqwest::Client::new(),
            redis,
        }
    }

    /// The same test's keys as another Redis holds them: a replica of the application's.
    pub async fn at_replica(&self, redis_url: &str) -> Self {
        Self {
            address: self.address.clone(),
            prefix: self.prefix.clone(),
            settings: self.settings.clone(),
            http: self.http.clone(),
            redis: connect(redis_url).await,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// Posts `events` to `/v1/events/{source}` in batches of 2,000; answers the summed
    /// (accepted, duplicate, rejected), and fails the test on any rejection or non-200.
    pub async fn post_batches(&self, source: &str, events: &[Value]) -> (u64, u64, u64) {
        let (mut accepted, mut duplicate, mut rejected) = (0, 0, 0);
        for chunk in events.chunks(2_000) {
            let response = self
                .post_json(
                    &format!("/v1/events/{source}"),
                    &Value::from(chunk.to_vec()),
                )
                .await;
            assert_eq!(response.status(), 200, "POST /v1/events/{source}");
            let body: Value = response.json().await.expect("batch answer");
            assert_eq!(body["rejected"], 0, "{source}: {body}");
            let count = |name: &str| body[name].as_u64().expect("count");
            accepted += count("accepted");
            duplicate += count("duplicate");
            rejected += count("rejected");
        }
        (accepted, duplicate, rejected)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    /// GET `path`, its JSON body.
    pub async fn get_json(&self, path: &str) -> Value {
        self.get(path).await.json().await.expect("a JSON answer")
    }

    /// Every key of this test, with its prefix, by `SCAN`: one `KEYS` walks the whole test
    /// database in one command, and with keys left by earlier runs it outlasted the connection's
    /// timeout (and `cleanup`, ignoring the error, then left this test's keys behind too).
    async fn full_keys(&self) -> redis::RedisResult<Vec<String>> {
        let mut conn = self.redis.clone();
        let mut keys = Vec::new();
        let mut cursor = 0_u64;
        loop {
            let (next, page): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}*", self.prefix))
                .arg("COUNT")
                .arg(10_000)
                .query_async(&mut conn)
                .await?;
            keys.extend(page);
            if next == 0 {
                return Ok(keys);
            }
            cursor = next;
        }
    }

    /// Every key of this test, sorted (the test's own prefix stripped).
    pub async fn keys(&self) -> Vec<String> {
        let mut keys = self.full_keys().await.expect("SCAN");
        for key in &mut keys {
            key.drain(..self.prefix.len());
        }
        keys.sort();
        // SCAN may return a key twice while Redis resizes its table.
        keys.dedup();
        keys
    }

    pub async fn hgetall(&self, key: &str) -> Map<String, Value> {
        let mut conn = self.redis.clone();
        let fields: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(format!("{}{key}", self.prefix))
            .query_async(&mut conn)
            .await
            .expect("HGETALL");
        fields
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect()
    }

    /// The members of sorted set `key` of this test, lowest score first.
    pub async fn members(&self, key: &str) -> Vec<String> {
        let mut conn = self.redis.clone();
        redis::cmd("ZRANGE")
            .arg(format!("{}{key}", self.prefix))
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .expect("ZRANGE")
    }

    /// The items of list `key` of this test.
    pub async fn list(&self, key: &str) -> Vec<String> {
        let mut conn = self.redis.clone();
        redis::cmd("LRANGE")
            .arg(format!("{}{key}", self.prefix))
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .expect("LRANGE")
    }

    /// `PTTL` of key `key` of this test: ms left, -1 without a TTL, -2 when absent.
    pub async fn pttl(&self, key: &str) -> i64 {
        let mut conn = self.redis.clone();
        redis::cmd("PTTL")
            .arg(format!("{}{key}", self.prefix))
            .query_async(&mut conn)
            .await
            .expect("PTTL")
    }

    /// Gives key `key` of this test a TTL of `ms`.
    pub async fn pexpire(&self, key: &str, ms: u64) {
        let mut conn = self.redis.clone();
        let _: i64 = redis::cmd("PEXPIRE")
            .arg(format!("{}{key}", self.prefix))
            .arg(ms)
            .query_async(&mut conn)
            .await
            .expect("PEXPIRE");
    }

    /// String key `key` of this test.
    pub async fn get_string(&self, key: &str) -> Option<String> {
        let mut conn = self.redis.clone();
        redis::cmd("GET")
            .arg(format!("{}{key}", self.prefix))
            .query_async(&mut conn)
            .await
            .expect("GET")
    }

    /// Sets string key `key` of this test to `value`.
    pub async fn set(&self, key: &str, value: &str) {
        let mut conn = self.redis.clone();
        let () = redis::cmd("SET")
            .arg(format!("{}{key}", self.prefix))
            .arg(value)
            .query_async(&mut conn)
            .await
            .expect("SET");
    }

    /// Deletes key `key` of this test.
    pub async fn delete(&self, key: &str) {
        let mut conn = self.redis.clone();
        let _: i64 = redis::cmd("DEL")
            .arg(format!("{}{key}", self.prefix))
            .query_async(&mut conn)
            .await
            .expect("DEL");
    }

    /// Sends restaurant r1 (sent before with `minimum_order_value`) again without that field and
    /// with another average ticket: an update, whose raw hash keeps none of the old fields.
    pub async fn assert_a_changed_restaurant_replaces_its_record(&self) {
        let mut changed = restaurant_event("r1", 80.0);
        changed
            .as_object_mut()
            .expect("an object")
            .remove("minimum_order_value");
        let body: Value = self
            .post_json("/restaurant-event/", &changed)
            .await
            .json()
            .await
            .expect("JSON");
        assert_eq!(body["status"], "accepted");
        let raw = self.hgetall("raw_restaurant:r1").await;
        assert_eq!(raw["average_ticket"], "80.0");
        assert!(
            !raw.contains_key("minimum_order_value"),
            "a removed field lingers"
        );
    }

    /// With markers expiring before raw hashes (the settings' `dedupe_ttl_secs` shorter than
    /// `raw_ttl_secs`, 0 = kept), an id whose marker is gone may still have a raw hash: a record
    /// sent again then replaces it.
    pub async fn assert_replaces_a_record_that_outlived_its_marker(&self) {
        let first = self
            .post_json("/restaurant-event/", &restaurant_event("r1", 60.0))
            .await;
        assert_eq!(first.status(), 200);
        self.delete("seen:restaurant:r1").await; // as its expiry would
        self.assert_a_changed_restaurant_replaces_its_record().await;
    }

    /// With a raw TTL of 1 s and markers kept for good (the settings' `raw_ttl_secs` 1,
    /// `dedupe_ttl_secs` 0), new records' raw hashes carry no TTL: they are queued in
    /// `larder:raw-expiry` and deleted by the first call a second later, unless they got a TTL of
    /// their own (an update's) meanwhile, or by the API's sweep when no call comes; an update
    /// gets its TTL as before.
    pub async fn assert_raw_hashes_expire_through_the_queue(&self) {
        assert_eq!(
            (
                self.settings.redis.raw_ttl_secs,
                self.settings.redis.dedupe_ttl_secs
            ),
            (1, 0)
        );
        for id in ["r1", "r3"] {
            let response = self
                .post_json("/restaurant-event/", &restaurant_event(id, 60.0))
                .await;
            assert_eq!(response.status(), 200);
            assert_eq!(self.pttl(&format!("raw_restaurant:{id}")).await, -1);
        }
        let queued = self.list("larder:raw-expiry").await;
        assert_eq!(queued.len(), 2, "{queued:?}");
        for (entry, id) in queued.iter().zip(["r1", "r3"]) {
            let (at, key) = entry.split_once(':').expect("{ms}:{key}");
            assert!(at.parse::<u64>().is_ok(), "{entry}");
            assert_eq!(key, format!("{}raw_restaurant:{id}", self.prefix));
        }
        // As an update's TTL would: the sweep must leave r1 to it.
        self.pexpire("raw_restaurant:r1", 60_000).await;

        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        self.post_json("/restaurant-event/", &restaurant_event("r2", 60.0))
            .await;
        assert!(
            self.hgetall("raw_restaurant:r3").await.is_empty(),
            "r3 outlived its TTL"
        );
        assert_eq!(
            self.hgetall("raw_restaurant:r1").await["average_ticket"],
            "60.0"
        );
        let queued = self.list("larder:raw-expiry").await;
        assert_eq!(queued.len(), 1, "{queued:?}");
        assert!(queued[0].ends_with("raw_restaurant:r2"), "{queued:?}");

        self.post_json("/restaurant-event/", &restaurant_event("r2", 80.0))
            .await;
        let ttl = self.pttl("raw_restaurant:r2").await;
        assert!((1..=1000).contains(&ttl), "an update's TTL: {ttl}");
        assert_eq!(self.list("larder:raw-expiry").await.len(), 1);

        // With no more events, the API's sweep (every second) deletes r4 in time.
        self.post_json("/restaurant-event/", &restaurant_event("r4", 60.0))
            .await;
        tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
        assert!(
            self.hgetall("raw_restaurant:r4").await.is_empty(),
            "r4 outlived its TTL"
        );
        assert!(self.list("larder:raw-expiry").await.is_empty());
    }

    /// With markers that expire (the settings' `dedupe_ttl_secs` above 0), an id can be new
    /// again: every raw hash gets a TTL of its own, and nothing is queued.
    pub async fn assert_raw_hashes_expire_by_their_ttl_while_markers_expire(&self) {
        assert!(self.settings.redis.dedupe_ttl_secs > 0);
        let response = self
            .post_json("/restaurant-event/", &restaurant_event("r1", 60.0))
            .await;
        assert_eq!(response.status(), 200);
        let ttl = self.pttl("raw_restaurant:r1").await;
        let raw_ttl_ms = 1000 * self.settings.redis.raw_ttl_secs as i64;
        assert!((1..=raw_ttl_ms).contains(&ttl), "{ttl}");
        assert!(self.list("larder:raw-expiry").await.is_empty());
    }

    /// An ingest call that fails midway keeps what it wrote before the failure, as a script does;
    /// the entities it changed get their versions all the same (they are written together at the
    /// end of a call), or lookups would go on serving what they cached before. An order feeds
    /// restaurant, consumer and order, in that order (config/features.toml): its order entity's
    /// key made a string, the call fails after writing the other two.
    pub async fn assert_a_failed_call_versions_what_it_wrote(&self) {
        self.set("rtf_order:o1", "not a hash").await;
        let response = self
            .post_json(
                "/order-event/",
                &order_event("o1", "r1", "c1", 46.0, "2019-01-17T22:50:06.000Z"),
            )
            .await;
        assert!(response.status().is_server_error(), "{}", response.status());
        for entity in ["rtf_restaurant:r1", "rtf_consumer:c1"] {
            assert_eq!(
                self.hgetall(entity).await["id"],
                entity.split(':').nth(1).unwrap_or("")
            );
            let version = self.get_string(&format!("{{{entity}}}:v")).await;
            assert!(version.is_some(), "{entity} changed without a new version");
        }
    }

    /// Has Redis close every client connection but this helper's own, as a restart would.
    pub async fn drop_other_connections(&self) {
        let mut conn = self.redis.clone();
        let _: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("normal")
            .arg("SKIPME")
            .arg("yes")
            .query_async(&mut conn)
            .await
            .expect("CLIENT KILL");
    }

    /// Empties Redis' script cache, as a restart would.
    pub async fn flush_scripts(&self) {
        let mut conn = self.redis.clone();
        let _: () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async(&mut conn)
            .await
            .expect("SCRIPT FLUSH");
    }

    /// How Redis stores `key` (`OBJECT ENCODING`: listpack, hashtable, …).
    pub async fn encoding(&self, key: &str) -> String {
        let mut conn = self.redis.clone();
        redis::cmd("OBJECT")
            .arg("ENCODING")
            .arg(format!("{}{key}", self.prefix))
            .query_async(&mut conn)
            .await
            .expect("OBJECT ENCODING")
    }

    pub async fn stream_len(&self, key: &str) -> usize {
        let mut conn = self.redis.clone();
        redis::cmd("XLEN")
            .arg(format!("{}{key}", self.prefix))
            .query_async(&mut conn)
            .await
            .expect("XLEN")
    }

    /// A snapshot of everything this test stored: each key with its full content, versions
    /// aside (they number the writes that made the content, not the content).
    pub async fn dump(&self) -> Vec<(String, String)> {
        self.snapshot(false).await
    }

    /// Everything this test stored, as a replica must hold it: the versions too, stream entries
    /// with their ids, and each key's expiry time (`PEXPIRETIME`).
    pub async fn exact_dump(&self) -> Vec<(String, String)> {
        self.snapshot(true).await
    }

    async fn snapshot(&self, exact: bool) -> Vec<(String, String)> {
        let mut conn = self.redis.clone();
        let mut out = Vec::new();
        for key in self.keys().await {
            if !exact && (key == "larder:version" || key.ends_with("}:v")) {
                continue;
            }
            let full = format!("{}{key}", self.prefix);
            let kind: String = redis::cmd("TYPE")
                .arg(&full)
                .query_async(&mut conn)
                .await
                .expect("TYPE");
            let content: Value = match kind.as_str() {
                "hash" => Value::Object(self.hgetall(&key).await),
                // The entries' fields, sorted: ids and order are arrival times and order.
                "stream" => {
                    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
                        .arg(&full)
                        .arg("-")
                        .arg("+")
                        .query_async(&mut conn)
                        .await
                        .expect("XRANGE");
                    let mut entries: Vec<String> = entries
                        .into_iter()
                        .map(|(id, fields)| match exact {
                            true => format!("{id} {fields:?}"),
                            false => format!("{fields:?}"),
                        })
                        .collect();
                    if !exact {
                        entries.sort();
                    }
                    Value::from(entries)
                }
                "zset" => {
                    let members: Vec<(String, String)> = redis::cmd("ZRANGE")
                        .arg(&full)
                        .arg(0)
                        .arg(-1)
                        .arg("WITHSCORES")
                        .query_async(&mut conn)
                        .await
                        .expect("ZRANGE");
                    Value::from(
                        members
                            .into_iter()
                            .map(|(m, s)| format!("{m}={s}"))
                            .collect::<Vec<_>>(),
                    )
                }
                "list" => {
                    let items: Vec<String> = redis::cmd("LRANGE")
                        .arg(&full)
                        .arg(0)
                        .arg(-1)
                        .query_async(&mut conn)
                        .await
                        .expect("LRANGE");
                    Value::from(items)
                }
                _ => Value::from(self.get_string(&key).await),
            };
            let content = if exact {
                let expires_at: i64 = redis::cmd("PEXPIRETIME")
                    .arg(&full)
                    .query_async(&mut conn)
                    .await
                    .expect("PEXPIRETIME");
                Value::from(vec![content, Value::from(expires_at)])
            } else {
                content
            };
            out.push((key, content.to_string()));
        }
        out
    }

    /// Deletes this test's keys (tests pass without it; it keeps the test database small).
    pub async fn cleanup(self) {
        let mut conn = self.redis.clone();
        let keys = self.full_keys().await.unwrap_or_default();
        for chunk in keys.chunks(1000) {
            let _: Result<(), _> = redis::cmd("UNLINK").arg(chunk).query_async(&mut conn).await;
        }
    }
}

/// Where the iFood samples are: `LARDER_SAMPLES_DIR`, else `../shared/ifood-sample` beside the repo.
pub fn samples_dir() -> Option<PathBuf> {
    let dir = std::env::var("LARDER_SAMPLES_DIR").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/ifood-sample"),
        PathBuf::from,
    );
    dir.is_dir().then_some(dir)
}

/// Reads a sample CSV as events the way the original data needs: every value is text, and
/// empty fields and the literal `null` are absent.
pub fn read_csv_events(path: &std::path::Path) -> Vec<Value> {
    let mut reader = csv::Reader::from_path(path).expect("sample CSV opens");
    let headers = reader.headers().expect("header row").clone();
    reader
        .records()
        .map(|record| {
            let record = record.expect("CSV row");
            let object: Map<String, Value> = headers
                .iter()
                .zip(record.iter())
                .filter(|(_, value)| !value.is_empty() && *value != "null")
                .map(|(name, value)| (name.to_owned(), Value::String(value.to_owned())))
                .collect();
            Value::Object(object)
        })
        .collect()
}

/// A valid restaurant event, with `id` and `average_ticket` chosen by the test.
pub fn restaurant_event(id: &str, average_ticket: f64) -> Value {
    serde_json::json!({
        "id": id, "created_at": "2017-01-23T12:52:30.910Z", "enabled": "true",
        "price_range": 3, "average_ticket": average_ticket, "takeout_time": 0,
        "delivery_time": 50, "minimum_order_value": "30.0", "merchant_zip_code": "14025",
        "merchant_city": "RIBEIRAO PRETO", "merchant_state": "SP", "merchant_country": "BR"
    })
}

/// A valid order event.
pub fn order_event(
    order_id: &str,
    merchant_id: &str,
    customer_id: &str,
    amount: f64,
    at: &str,
) -> Value {
    serde_json::json!({
        "cpf": "80532101763", "customer_id": customer_id, "customer_name": "GUSTAVO",
        "delivery_address_city": "FRANCA", "delivery_address_country": "BR",
        "delivery_address_district": "JARDIM ESPRAIADO", "delivery_address_external_id": 6736655,
        "delivery_address_latitude": -47.39, "delivery_address_longitude": -20.55,
        "delivery_address_state": "SP", "delivery_address_zip_code": 14403,
        "items": [{"name": "Parmegiana", "quantity": 1.0}], "merchant_id": merchant_id,
        "merchant_latitude": -47.39, "merchant_longitude": -20.55,
        "merchant_timezone": "America/Sao_Paulo", "order_created_at": at, "order_id": order_id,
        "order_scheduled": false, "order_total_amount": amount, "origin_platform": "ANDROID"
    })
}

/// A valid status event.
pub fn status_event(status_id: &str, order_id: &str, value: &str, at: &str) -> Value {
    serde_json::json!({"created_at": at, "order_id": order_id, "status_id": status_id, "value": value})
}

/// A valid consumer event.
pub fn consumer_event(customer_id: &str) -> Value {
    serde_json::json!({
        "customer_id": customer_id, "language": "pt-br", "created_at": "2018-04-05T14:49:18.165Z",
        "active": true, "customer_name": "NUNO", "customer_phone_area": "46",
        "customer_phone_number": "990005469"
    })
}

/// The S3-compatible server of the tests (`deploy/local/ensure-s3.sh` starts moto there).
pub fn test_s3_settings() -> larder_s3::S3Settings {
    larder_s3::S3Settings {
        endpoint: std::env::var("LARDER_TEST_S3_ENDPOINT")
            .unwrap_or_else(|_| "http://127.0.0.1:9010".into()),
        region: "us-east-1".into(),
        path_style: true,
        access_key_id: "test".into(),
        secret_access_key: Some(secrecy::SecretString::from("test")),
    }
}

/// A fresh, empty directory under the system's temporary directory.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{name}-{}", unique_prefix().replace(':', "-")));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    dir
}
