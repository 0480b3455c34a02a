//! Feature views end to end in memory: definitions → updates → a reference applier with the
//! store's semantics → evaluation. The Redis adapter is held to the same results by the
//! end-to-end tests.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::*;
use crate::{Event, Source, Timestamp};

const SHIPPED: &str = include_str!("../../../../config/features.toml");

fn shipped() -> FeatureViews {
    FeatureViews::from_config(toml::from_str(SHIPPED).unwrap()).unwrap()
}

fn ms(text: &str) -> i64 {
    Timestamp::parse_rfc3339(text).unwrap().millis()
}

/// One tier hash: tile field → measure → value (packed when read).
type Tiles = HashMap<String, HashMap<String, String>>;

/// Applies updates the way `ingest.lua` does.
#[derive(Default)]
struct Memory {
    hashes: HashMap<(String, String), HashMap<String, String>>,
    tiles: HashMap<(String, String, Tier), Tiles>,
    sets: HashMap<(String, String, String), HashMap<String, i64>>,
    parked: HashMap<(String, String, String), Vec<Vec<StateOp>>>,
}

impl Memory {
    fn ingest(&mut self, views: &FeatureViews, event: &Event) {
        for update in views.updates_for(event) {
            match update.target {
                Target::Key(key) => self.apply(&update.view, &key, &update.ops),
                Target::Via { view, key, feature } => {
                    let found = self
                        .hashes
                        .get(&(view.clone(), key.clone()))
                        .and_then(|h| h.get(&feature))
                        .cloned();
                    match found {
                        Some(target) => self.apply(&update.view, &target, &update.ops),
                        None => self
                            .parked
                            .entry((view, key, update.view))
                            .or_default()
                            .push(update.ops),
                    }
                }
            }
        }
    }

    fn apply(&mut self, view: &str, key: &str, ops: &[StateOp]) {
        let id = (view.to_owned(), key.to_owned());
        for op in ops {
            let h = self.hashes.entry(id.clone()).or_default();
            let get =
                |h: &HashMap<String, String>, f: &str| h.get(f).and_then(|v| v.parse::<i64>().ok());
            match op {
                StateOp::Touch { time_ms } => {
                    h.entry("id".into()).or_insert_with(|| key.to_owned());
                    if get(h, field::NEWEST).is_none_or(|t| *time_ms > t) {
                        h.insert(field::NEWEST.into(), time_ms.to_string());
                    }
                }
                StateOp::Last {
                    feature,
                    value,
                    time_ms,
                } => {
                    if get(h, &field::last_time(feature)).is_none_or(|t| *time_ms >= t) {
                        h.insert(feature.clone(), value.clone());
                        h.insert(field::last_time(feature), time_ms.to_string());
                    }
                }
                StateOp::Tiles {
                    tier,
                    bucket,
                    values,
                    retention,
                    ..
                } => {
                    let newest = get(h, field::newest_bucket(*tier));
                    if newest.is_none_or(|n| *bucket > n - retention) {
                        let tiles = self
                            .tiles
                            .entry((view.to_owned(), key.to_owned(), *tier))
                            .or_default();
                        for &span in tier.spans() {
                            let tile = field::tile(Tile::containing(span, *bucket));
                            let measures = tiles.entry(tile).or_default();
                            for v in values {
                                combine_into(measures, v.measure.clone(), v.combine, v.value);
                            }
                        }
                        if newest.is_none_or(|n| *bucket > n) {
                            h.insert(field::newest_bucket(*tier).to_owned(), bucket.to_string());
                        }
                    }
                }
                StateOp::Lifetime {
                    measure,
                    combine,
                    value,
                } => combine_into(h, field::lifetime(measure), *combine, *value),
                StateOp::Distinct {
                    measure,
                    member,
                    time_ms,
                    retention_ms,
                } => {
                    let line = get(h, field::NEWEST).unwrap_or(*time_ms) - retention_ms;
                    let set = self
                        .sets
                        .entry((view.into(), key.into(), measure.clone()))
                        .or_default();
                    if *time_ms > line {
                        let score = set.entry(member.clone()).or_insert(*time_ms);
                        *score = (*score).max(*time_ms);
                    }
                    set.retain(|_, score| *score > line);
                }
                StateOp::Frequency { measure, value } => {
                    combine_into(h, field::frequency(measure, value), Combine::Add, 1)
                }
                StateOp::Drain {
                    view: waiting,
                    key: target,
                } => {
                    let parked = self
                        .parked
                        .remove(&(view.to_owned(), key.to_owned(), waiting.clone()))
                        .unwrap_or_default();
                    for ops in parked {
                        self.apply(waiting, target, &ops);
                    }
                }
            }
        }
    }

    fn values(
        &self,
        views: &FeatureViews,
        view: &str,
        key: &str,
        as_of: &str,
    ) -> HashMap<String, Value> {
        let view = views.view(view).unwrap();
        let as_of = ms(as_of);
        let plan = view.read_plan(as_of);
        let state = EntityState {
            fields: self
                .hashes
                .get(&(view.name.clone(), key.to_owned()))
                .cloned()
                .unwrap_or_default(),
            tiles: plan
                .tiles
                .iter()
                .flat_map(|read| {
                    let stored = self
                        .tiles
                        .get(&(view.name.clone(), key.to_owned(), read.tier));
                    read.tiles
                        .iter()
                        .zip(&read.fields)
                        .filter_map(move |(tile, f)| {
                            let measures = stored?.get(f)?;
                            let packed: Vec<String> =
                                measures.iter().map(|(m, v)| format!("{m}:{v}")).collect();
                            Some((read.tier, *tile, packed.join(",")))
                        })
                })
                .collect(),
            distinct: plan
                .distinct
                .iter()
                .map(|q| {
                    let set =
                        self.sets
                            .get(&(view.name.clone(), key.to_owned(), q.measure.clone()));
                    set.map_or(0, |s| {
                        s.values()
                            .filter(|t| q.lo_ms < **t && **t <= q.hi_ms)
                            .count() as u64
                    })
                })
                .collect(),
            version: None,
        };
        let values = view.evaluate(&state, as_of);
        // What lookups evaluate: the hash with the window totals kept from an earlier read.
        let totals = view.window_totals(&state, as_of);
        let hash_only = EntityState {
            tiles: Vec::new(),
            ..state
        };
        assert_eq!(
            view.evaluate_with_totals(&hash_only, &totals, as_of),
            values,
            "window totals answer as the tiles do"
        );
        view.features
            .iter()
            .zip(values)
            .map(|(f, v)| (f.name.clone(), v.value))
            .collect()
    }
}

fn combine_into(h: &mut HashMap<String, String>, field: String, combine: Combine, value: i64) {
    let current = h.get(&field).and_then(|v| v.parse::<i64>().ok());
    let next = match (combine, current) {
        (_, None) => value,
        (Combine::Add, Some(c)) => c + value,
        (Combine::Min, Some(c)) => c.min(value),
        (Combine::Max, Some(c)) => c.max(value),
    };
    h.insert(field, next.to_string());
}

fn order(
    id: &str,
    merchant: &str,
    customer: Option<&str>,
    amount: f64,
    at: &str,
    platform: &str,
) -> Event {
    let mut value = json!({
        "cpf": "1", "delivery_address_city": "X", "delivery_address_country": "BR",
        "delivery_address_district": "D", "delivery_address_external_id": "1",
        "delivery_address_latitude": 0, "delivery_address_longitude": 0, "delivery_address_state": "SP",
        "delivery_address_zip_code": "1", "items": "[]", "merchant_id": merchant, "merchant_latitude": 0,
        "merchant_longitude": 0, "merchant_timezone": "America/Sao_Paulo", "order_created_at": at,
        "order_id": id, "order_scheduled": false, "order_total_amount": amount, "origin_platform": platform
    });
    if let Some(customer) = customer {
        value["customer_id"] = json!(customer);
    }
    Event::parse(Source::Order, &value).unwrap()
}

fn status(id: &str, order: &str, value: &str, at: &str) -> Event {
    Event::parse(
        Source::Status,
        &json!({"created_at": at, "order_id": order, "status_id": id, "value": value}),
    )
    .unwrap()
}

fn restaurant(id: &str, ticket: f64) -> Event {
    Event::parse(Source::Restaurant, &json!({
        "id": id, "created_at": "2017-01-23T12:52:30.910Z", "enabled": true, "price_range": 3,
        "average_ticket": ticket, "takeout_time": 0, "merchant_zip_code": "1", "merchant_city": "C",
        "merchant_state": "SP", "merchant_country": "BR"
    })).unwrap()
}

fn run(events: &[Event]) -> (FeatureViews, Memory) {
    let views = shipped();
    let mut memory = Memory::default();
    for event in events {
        memory.ingest(&views, event);
    }
    (views, memory)
}

#[test]
fn the_shipped_views_are_valid_and_name_the_required_features() {
    let views = shipped();
    let required = [
        (
            "restaurant",
            &[
                "avg_ticket",
                "orders_1h",
                "orders_24h",
                "orders_7d",
                "orders_30d",
                "revenue_24h",
                "revenue_30d",
                "cancel_rate_7d",
            ][..],
        ),
        (
            "consumer",
            &[
                "orders_7d",
                "orders_30d",
                "orders_lifetime",
                "spent_30d",
                "spent_lifetime",
                "last_order_at",
            ][..],
        ),
        ("order", &["last_status", "last_status_at"][..]),
    ];
    for (view, features) in required {
        let view = views.view(view).unwrap();
        for feature in features {
            assert!(
                view.feature(feature).is_some(),
                "{}:{feature} missing",
                view.name
            );
        }
    }
}

#[test]
fn window_edges_follow_the_open_closed_rule() {
    let t = "2019-01-20T00:00:00.000Z";
    let (views, memory) = run(&[
        order(
            "o1",
            "r1",
            Some("c1"),
            10.0,
            "2019-01-19T00:00:00.000Z",
            "IOS",
        ), // exactly t - 24h: out
        order(
            "o2",
            "r1",
            Some("c1"),
            20.0,
            "2019-01-19T00:00:01.000Z",
            "IOS",
        ), // just inside
        order("o3", "r1", Some("c2"), 30.0, t, "ANDROID"), // exactly t: in
        order(
            "o4",
            "r1",
            Some("c2"),
            40.0,
            "2019-01-19T23:30:00.000Z",
            "ANDROID",
        ),
    ]);
    let v = memory.values(&views, "restaurant", "r1", t);
    assert_eq!(v["orders_24h"], json!(3));
    assert_eq!(v["revenue_24h"], json!(90.0));
    assert_eq!(v["avg_order_24h"], json!(30.0));
    assert_eq!(v["orders_1h"], json!(2));
    assert_eq!(v["max_order_30d"], json!(40.0));
    assert_eq!(v["orders_30d"], json!(4));
    assert_eq!(v["customers_30d"], json!(2));
    let before = memory.values(&views, "restaurant", "r1", "2019-01-19T00:00:00.000Z");
    assert_eq!(
        (before["orders_24h"].clone(), before["orders_30d"].clone()),
        (json!(1), json!(1))
    );
}

#[test]
fn empty_windows_are_zero_and_averages_null() {
    let (views, memory) = run(&[order(
        "o1",
        "r1",
        Some("c1"),
        10.0,
        "2019-01-01T10:00:00.000Z",
        "IOS",
    )]);
    let v = memory.values(&views, "restaurant", "r1", "2019-01-20T00:00:00.000Z");
    assert_eq!(
        (v["orders_24h"].clone(), v["revenue_24h"].clone()),
        (json!(0), json!(0.0))
    );
    assert_eq!(
        (v["avg_order_24h"].clone(), v["max_order_30d"].clone()),
        (Value::Null, json!(10.0))
    );
    assert_eq!(v["cancel_rate_7d"], Value::Null);
    let unknown = memory.values(&views, "restaurant", "nobody", "2019-01-20T00:00:00.000Z");
    assert_eq!(unknown["orders_24h"], Value::Null);
}

#[test]
fn a_late_event_inside_the_window_counts_and_one_behind_retention_does_not() {
    let t = "2019-01-20T00:00:00.000Z";
    let (views, memory) = run(&[
        order("o1", "r1", Some("c1"), 10.0, t, "IOS"),
        order(
            "o2",
            "r1",
            Some("c1"),
            10.0,
            "2019-01-19T12:00:00.000Z",
            "IOS",
        ), // late, inside 24h
        order(
            "o3",
            "r1",
            Some("c1"),
            10.0,
            "2019-01-17T12:00:00.000Z",
            "IOS",
        ), // late, behind minute retention
    ]);
    let v = memory.values(&views, "restaurant", "r1", t);
    assert_eq!(
        (v["orders_24h"].clone(), v["orders_7d"].clone()),
        (json!(2), json!(3))
    );
    // At an as_of whose window reaches behind the minute tier's retention there is no value.
    let then = memory.values(&views, "restaurant", "r1", "2019-01-17T13:00:00.000Z");
    assert_eq!(
        (then["orders_24h"].clone(), then["orders_7d"].clone()),
        (Value::Null, json!(1))
    );
}

#[test]
fn windows_reaching_behind_the_retention_line_have_no_value() {
    let mut events = Vec::new();
    for day in 1..=31 {
        events.push(order(
            &format!("o{day}"),
            "r1",
            Some("c1"),
            1.0,
            &format!("2018-12-{day:02}T10:00:00.000Z"),
            "IOS",
        ));
    }
    let (views, before) = run(&events);
    let dec31 = "2018-12-31T10:00:00.000Z";
    assert_eq!(
        before.values(&views, "restaurant", "r1", dec31)["orders_30d"],
        json!(30)
    );
    // One order 31 days later moves the entity's retention line (30d + 7d of hour buckets) past
    // every December bucket: December windows lost buckets (by event time, not wall clock), so
    // they have no value rather than a wrong one.
    events.push(order(
        "late",
        "r1",
        Some("c1"),
        1.0,
        "2019-01-31T10:00:00.000Z",
        "IOS",
    ));
    let (views, after) = run(&events);
    assert_eq!(
        views.view("restaurant").unwrap().retention(Tier::Hour),
        30 * 24 + 7 * 24
    );
    assert_eq!(
        after.values(&views, "restaurant", "r1", "2019-01-31T10:00:00.000Z")["orders_30d"],
        json!(1)
    );
    let december = after.values(&views, "restaurant", "r1", dec31);
    assert_eq!(december["orders_30d"], Value::Null);
    assert_eq!(december["orders_24h"], Value::Null);
    assert_eq!(december["customers_30d"], Value::Null);
    // A window starting exactly at the retention line (37 days before the newest event) is whole.
    let edge = after.values(&views, "restaurant", "r1", "2019-01-24T10:00:00.000Z");
    assert_eq!(edge["orders_30d"], json!(6));
}

#[test]
fn cancellations_join_statuses_to_restaurants_even_when_the_status_comes_first() {
    let t = "2019-01-20T00:00:00.000Z";
    let events = vec![
        status("s1", "o1", "CANCELLED", "2019-01-19T10:05:00.000Z"), // before its order
        order(
            "o1",
            "r1",
            Some("c1"),
            10.0,
            "2019-01-19T10:00:00.000Z",
            "IOS",
        ),
        order(
            "o2",
            "r1",
            Some("c1"),
            10.0,
            "2019-01-19T11:00:00.000Z",
            "IOS",
        ),
        status("s2", "o2", "PLACED", "2019-01-19T11:00:10.000Z"),
        status("s3", "o2", "CONCLUDED", "2019-01-19T11:40:10.000Z"),
    ];
    let (views, memory) = run(&events);
    let r = memory.values(&views, "restaurant", "r1", t);
    assert_eq!(
        (r["cancellations_7d"].clone(), r["cancel_rate_7d"].clone()),
        (json!(1), json!(0.5))
    );
    let o = memory.values(&views, "order", "o2", t);
    assert_eq!(o["last_status"], json!("CONCLUDED"));
    assert_eq!(o["last_status_at"], json!("2019-01-19T11:40:10.000Z"));
    assert_eq!(o["minutes_to_conclude"], json!(40.0));
    assert_eq!(o["cancelled_at"], Value::Null);
}

#[test]
fn an_event_every_filter_of_a_view_excludes_leaves_its_entity_alone() {
    let views = shipped();
    let updated = |event: &Event| -> Vec<String> {
        let updates = views.updates_for(event);
        updates.into_iter().map(|u| u.view).collect()
    };
    let at = "2019-01-19T11:00:10.000Z";
    // The restaurant takes statuses only through cancellations_7d (value = CANCELLED).
    assert_eq!(updated(&status("s1", "o1", "PLACED", at)), ["order"]);
    assert_eq!(
        updated(&status("s2", "o1", "CANCELLED", at)),
        ["restaurant", "order"]
    );
    // A source the view takes through no feature still makes its entity exist.
    let existence_only = FeatureViews::from_config(
        toml::from_str(
            r#"
            [[view]]
            name = "shop"
            key = "merchant_id"
            [view.sources]
            restaurant = "id"
            order = "merchant_id"
            [[view.feature]]
            name = "ticket"
            agg = "last"
            source = "restaurant"
            field = "average_ticket"
            "#,
        )
        .unwrap(),
    )
    .unwrap();
    let placed = order("o1", "r1", None, 10.0, at, "IOS");
    assert_eq!(existence_only.updates_for(&placed).len(), 1);

    // So the restaurant's newest event time is its newest order's, not a later status's.
    let order_at = "2019-01-19T11:00:00.000Z";
    let (views, memory) = run(&[
        order("o1", "r1", Some("c1"), 10.0, order_at, "IOS"),
        status("s1", "o1", "PLACED", "2019-01-19T11:30:00.000Z"),
    ]);
    let r1 = &memory.hashes[&("restaurant".to_owned(), "r1".to_owned())];
    assert_eq!(r1[field::NEWEST], ms(order_at).to_string());
    let values = memory.values(&views, "restaurant", "r1", "2019-01-20T00:00:00.000Z");
    assert_eq!(values["cancellations_7d"], json!(0));
}

#[test]
fn consumer_features_cover_lifetime_distinct_and_most_frequent() {
    let t = "2019-01-20T00:00:00.000Z";
    let (views, memory) = run(&[
        order(
            "o1",
            "r1",
            Some("c1"),
            10.0,
            "2018-12-01T10:00:00.000Z",
            "IOS",
        ),
        order(
            "o2",
            "r2",
            Some("c1"),
            20.5,
            "2019-01-15T10:00:00.000Z",
            "ANDROID",
        ),
        order(
            "o3",
            "r2",
            Some("c1"),
            30.0,
            "2019-01-19T10:00:00.000Z",
            "ANDROID",
        ),
        order("o4", "r3", None, 99.0, "2019-01-19T10:00:00.000Z", "IOS"),
    ]);
    let c = memory.values(&views, "consumer", "c1", t);
    assert_eq!(
        (
            c["orders_7d"].clone(),
            c["orders_30d"].clone(),
            c["orders_lifetime"].clone()
        ),
        (json!(2), json!(2), json!(3))
    );
    assert_eq!(
        (c["spent_30d"].clone(), c["spent_lifetime"].clone()),
        (json!(50.5), json!(60.5))
    );
    assert_eq!(c["avg_ticket"].as_f64().unwrap(), 60.5 / 3.0);
    assert_eq!(c["last_order_at"], json!("2019-01-19T10:00:00.000Z"));
    assert_eq!(
        (
            c["restaurants_30d"].clone(),
            c["preferred_platform"].clone()
        ),
        (json!(1), json!("ANDROID"))
    );
    assert!(
        !memory
            .hashes
            .keys()
            .any(|(view, key)| view == "consumer" && key != "c1"),
        "an order without customer fed a consumer"
    );
}

#[test]
fn the_same_events_in_any_order_or_twice_give_the_same_values() {
    let events = vec![
        restaurant("r1", 60.0),
        order(
            "o1",
            "r1",
            Some("c1"),
            10.1,
            "2019-01-19T10:00:00.000Z",
            "IOS",
        ),
        status("s1", "o1", "PLACED", "2019-01-19T10:00:30.000Z"),
        status("s2", "o1", "CANCELLED", "2019-01-19T10:20:30.000Z"),
        order(
            "o2",
            "r1",
            Some("c2"),
            20.2,
            "2019-01-18T10:00:00.000Z",
            "ANDROID",
        ),
        order(
            "o3",
            "r1",
            Some("c1"),
            0.3,
            "2018-12-18T10:00:00.000Z",
            "ANDROID",
        ),
        status("s3", "o3", "CONCLUDED", "2018-12-18T11:00:00.000Z"),
    ];
    let t = "2019-01-20T00:00:00.000Z";
    let (views, forward) = run(&events);
    let mut reversed = events.clone();
    reversed.reverse();
    let (_, backward) = run(&reversed);
    for (view, key) in [
        ("restaurant", "r1"),
        ("consumer", "c1"),
        ("order", "o1"),
        ("order", "o3"),
    ] {
        assert_eq!(
            forward.values(&views, view, key, t),
            backward.values(&views, view, key, t),
            "{view}:{key}"
        );
    }
}

fn error_of(toml_text: &str) -> String {
    FeatureViews::from_config(toml::from_str(toml_text).unwrap())
        .unwrap_err()
        .to_string()
}

#[test]
fn bad_definitions_name_the_view_feature_and_problem() {
    let base = "[[view]]\nname = \"v\"\nkey = \"k\"\n[view.sources]\norder = \"merchant_id\"\n[[view.feature]]\nname = \"f\"\n";
    let cases = [
        (
            "agg = \"count\"\nsource = \"orderz\"\n",
            "unknown source `orderz`",
        ),
        (
            "agg = \"sum\"\nsource = \"order\"\nfield = \"nope\"\n",
            "unknown field `nope` of source `order`",
        ),
        (
            "agg = \"sum\"\nsource = \"order\"\nfield = \"origin_platform\"\n",
            "is not numeric",
        ),
        (
            "agg = \"count\"\nsource = \"order\"\nwindow = \"2w\"\n",
            "bad window `2w`",
        ),
        (
            "agg = \"count\"\nsource = \"status\"\n",
            "not among the view's sources",
        ),
        (
            "agg = \"median\"\nsource = \"order\"\n",
            "unknown agg `median`",
        ),
        (
            "agg = \"count_distinct\"\nsource = \"order\"\nfield = \"cpf\"\n",
            "needs a window",
        ),
        (
            "agg = \"ratio\"\nof = [\"a\", \"b\"]\n",
            "unknown feature `a`",
        ),
    ];
    for (feature, expected) in cases {
        let error = error_of(&format!("{base}{feature}"));
        assert!(
            error.contains("view `v`") && error.contains(expected),
            "{error}"
        );
    }
    let via = "[[view]]\nname = \"v\"\nkey = \"k\"\n[view.sources]\nstatus = { key = \"order_id\", via = \"order.merchant_id\" }\n";
    assert!(error_of(via).contains("must name a `last` feature"));
}

#[test]
fn a_read_plan_is_the_same_for_every_instant_with_its_key() {
    let views = shipped();
    let t = ms("2019-01-20T10:00:00.000Z");
    for view in views.views() {
        // One plan for every instant in the minute (t - 1 min, t] …
        for as_of in [t - 59_999, t - 30_000, t] {
            assert_eq!(ReadPlan::key(as_of), ReadPlan::key(t));
            assert_eq!(view.read_plan(as_of), view.read_plan(t), "{}", view.name);
        }
        // … and another once windows move on by a bucket.
        assert_ne!(ReadPlan::key(t + 1), ReadPlan::key(t));
        let windowed = view.features.iter().any(
            |f| matches!(f.kind, FeatureKind::Aggregate { window, .. } if !window.is_lifetime()),
        );
        if windowed {
            assert_ne!(view.read_plan(t + 1), view.read_plan(t), "{}", view.name);
        }
    }
}

/// The ingest script names a tier's newest bucket `_mx` followed by the tier's tag.
#[test]
fn newest_bucket_fields_are_named_by_the_tier_tag() {
    for tier in Tier::ALL {
        assert_eq!(field::newest_bucket(tier), format!("_mx{}", tier.tag()));
    }
}
