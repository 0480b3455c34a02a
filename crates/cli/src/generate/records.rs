//! One record of each source, drawn from its own random stream. Shares and shapes follow the
//! samples: skewed restaurant popularity, repeat customers, 1–3 items with garnishes, ≈2.5 %
//! cancelled orders, and a little of the real data's mess (null customer ids, blank names and
//! optional fields, an `items` text whose quotes are escaped twice, exact duplicate statuses).

use std::fmt::Write as _;

use larder_domain::Timestamp;

use super::{
    rng::Rng,
    vocabulary::{
        CITIES, CITY_WEIGHTS, DISHES, DISTRICTS, GARNISH_CATEGORIES, GARNISHES, HOUR_WEIGHTS,
        LANGUAGES, NAMES, PLATFORMS, TIMEZONES,
    },
};

const RESTAURANT_SALT: u64 = 1;
const CONSUMER_SALT: u64 = 2;
const ORDER_SALT: u64 = 3;
const STATUS_SALT: u64 = 4;
const TIME_SALT: u64 = 5;
const STATUS_ID_SALT: u64 = 6;
const CPF_SALT: u64 = 7;

pub const RESTAURANT_HEADER: &str = "id,created_at,enabled,price_range,average_ticket,takeout_time,delivery_time,minimum_order_value,merchant_zip_code,merchant_city,merchant_state,merchant_country\n";
pub const CONSUMER_HEADER: &str = "customer_id,language,created_at,active,customer_name,customer_phone_area,customer_phone_number\n";

/// 2018-12-01T00:00:00Z: the first day of the original data.
const START_MS: i64 = 1_543_622_400_000;
const DAYS: i64 = 62;
const DAY_MS: i64 = 86_400_000;
const MINUTE_MS: i64 = 60_000;

/// Sizes of a generated dataset, all derived from the number of orders.
#[derive(Debug, Clone)]
pub struct Scale {
    pub seed: u64,
    pub orders: u64,
    pub restaurants: u64,
    pub consumers: u64,
}

impl Scale {
    /// The original proportions: ≈7.3 k restaurants and ≈806 k consumers for 3.6 M orders.
    pub fn new(orders: u64, seed: u64) -> Self {
        let restaurants = (orders * 7_292 / 3_600_000).clamp(20, 7_292);
        let consumers = (orders * 806_000 / 3_600_000).max(10);
        Self {
            seed,
            orders,
            restaurants,
            consumers,
        }
    }

    /// Order times, sorted: more at weekends and at lunch and dinner (UTC-3).
    pub fn order_times(&self) -> Vec<i64> {
        let mut rng = Rng::new(self.seed ^ TIME_SALT);
        let day_weights: Vec<f64> = (0..DAYS)
            .map(|d| {
                let weekday = (d + 5) % 7; // 2018-12-01 was a Saturday
                let weekend = if weekday >= 5 { 1.3 } else { 1.0 };
                weekend * (1.0 + d as f64 / DAYS as f64 * 0.2)
            })
            .collect();
        let mut times: Vec<i64> = (0..self.orders)
            .map(|_| {
                let day = rng.weighted(&day_weights) as i64;
                let local_hour = rng.weighted(&HOUR_WEIGHTS) as i64;
                let ms_in_hour = rng.below(3_600) as i64 * 1_000;
                START_MS + day * DAY_MS + (local_hour + 3) * 3_600_000 + ms_in_hour
            })
            .collect();
        times.sort_unstable();
        times
    }

    fn restaurant_id(&self, index: u64) -> String {
        Rng::for_item(self.seed, RESTAURANT_SALT, index).hex_id()
    }

    fn consumer_id(&self, index: u64) -> String {
        Rng::for_item(self.seed, CONSUMER_SALT, index).hex_id()
    }

    fn order_id(&self, index: u64) -> String {
        Rng::for_item(self.seed, ORDER_SALT, index).hex_id()
    }

    /// A restaurant's city (index into `CITIES`) and timezone, drawn after its id.
    fn restaurant_place(&self, index: u64) -> (usize, &'static str) {
        let mut rng = Rng::for_item(self.seed, RESTAURANT_SALT, index);
        rng.hex_id();
        let city = rng.weighted(CITY_WEIGHTS);
        (city, TIMEZONES[city % 3])
    }

    /// A consumer's name, as orders repeat it.
    fn consumer_name(&self, index: u64) -> &'static str {
        let mut rng = Rng::for_item(self.seed, CONSUMER_SALT, index);
        rng.hex_id();
        let name: &&'static str = rng.pick(NAMES);
        name
    }
}

fn time(ms: i64) -> String {
    Timestamp::from_millis(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Appends `text` as a JSON string literal.
fn push_json_str(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

pub fn restaurant_line(scale: &Scale, index: u64, out: &mut String) {
    let id = scale.restaurant_id(index);
    let (city, _) = scale.restaurant_place(index);
    let mut rng = Rng::for_item(scale.seed, RESTAURANT_SALT, index);
    rng.hex_id();
    rng.weighted(CITY_WEIGHTS);
    let (name, state, _, _, zip) = CITIES[city];
    let created = START_MS - 700 * DAY_MS + rng.below(690 * DAY_MS as u64) as i64;
    let ticket = [20.0, 30.0, 40.0, 50.0, 60.0, 80.0, 100.0, 120.0][rng.below(8) as usize];
    let delivery = if rng.chance(0.0002) {
        String::new()
    } else {
        (rng.below(10) * 10).to_string()
    };
    let minimum = if rng.chance(0.013) {
        String::new()
    } else {
        format!("{:.1}", 10.0 + rng.below(7) as f64 * 5.0)
    };
    let _ = writeln!(
        out,
        "{id},{},{},{},{ticket:.1},{},{delivery},{minimum},{}{:03},{name},{state},BR",
        time(created),
        rng.chance(0.7),
        1 + rng.weighted(&[10.0, 30.0, 35.0, 20.0, 5.0]),
        [0, 0, 0, 15, 20, 30][rng.below(6) as usize],
        zip,
        rng.below(1000),
    );
}

pub fn consumer_line(scale: &Scale, index: u64, out: &mut String) {
    let id = scale.consumer_id(index);
    let name = scale.consumer_name(index);
    let mut rng = Rng::for_item(scale.seed, CONSUMER_SALT, index);
    rng.hex_id();
    rng.pick(NAMES);
    let weights: Vec<f64> = LANGUAGES.iter().map(|(_, w)| *w).collect();
    let language = LANGUAGES[rng.weighted(&weights)].0;
    let created = START_MS - 600 * DAY_MS + rng.below(660 * DAY_MS as u64) as i64;
    let blank_name = rng.chance(0.001);
    let _ = writeln!(
        out,
        "{id},{language},{},{},{},{},9{:08}",
        time(created),
        rng.chance(0.95),
        if blank_name { "" } else { name },
        11 + rng.below(89),
        rng.below(100_000_000),
    );
}

fn money(cents: u64) -> String {
    format!("{{\"value\": \"{cents}\", \"currency\": \"BRL\"}}")
}

/// The `items` JSON text of an order and its total in cents.
fn items(rng: &mut Rng) -> (String, u64) {
    let mut text = String::from("[");
    let mut total = 0;
    let count = 1 + rng.weighted(&[60.0, 30.0, 10.0]);
    for sequence in 1..=count {
        let (dish, price) = *rng.pick(DISHES);
        let quantity = 1 + rng.weighted(&[85.0, 12.0, 3.0]) as u64;
        let value = u64::from(price) * quantity;
        total += value;
        let mut garnish = String::from("[");
        for g in 0..rng.weighted(&[50.0, 35.0, 15.0]) {
            if g > 0 {
                garnish.push_str(", ");
            }
            let _ = write!(
                garnish,
                "{{\"name\": \"{}\", \"addition\": {}, \"discount\": {}, \"quantity\": 1.00, \"sequence\": {}, \"unitPrice\": {}, \"categoryId\": \"{:05X}\", \"externalId\": \"{:016x}{:016x}\", \"totalValue\": {}, \"categoryName\": \"{}\", \"integrationId\": null}}",
                rng.pick(GARNISHES),
                money(0),
                money(0),
                g + 2,
                money(0),
                rng.below(1 << 20),
                rng.next_u64(),
                rng.next_u64(),
                money(0),
                rng.pick(GARNISH_CATEGORIES),
            );
        }
        garnish.push(']');
        if sequence > 1 {
            text.push_str(", ");
        }
        let _ = write!(
            text,
            "{{\"name\": \"{dish}\", \"addition\": {}, \"discount\": {}, \"quantity\": {quantity}.00, \"sequence\": {sequence}, \"unitPrice\": {}, \"externalId\": \"{:016x}{:016x}\", \"totalValue\": {}, \"customerNote\": null, \"garnishItems\": {garnish}, \"integrationId\": null, \"totalAddition\": {}, \"totalDiscount\": {}}}",
            money(0),
            money(0),
            money(u64::from(price)),
            rng.next_u64(),
            rng.next_u64(),
            money(value),
            money(0),
            money(0),
        );
    }
    text.push(']');
    (text, total)
}

pub fn order_line(scale: &Scale, index: u64, at: i64, out: &mut String) {
    let mut rng = Rng::for_item(scale.seed, ORDER_SALT, index);
    let order_id = rng.hex_id();
    let merchant = rng.skewed(scale.restaurants, 2.2);
    let customer = rng.skewed(scale.consumers, 1.6);
    let (city_index, timezone) = scale.restaurant_place(merchant);
    let (city, state, lat, lon, zip) = CITIES[city_index];
    let (mut items, cents) = items(&mut rng);
    if rng.chance(0.001) {
        // The real quirk: quotes escaped twice, so the text is not JSON.
        items = items.replace('"', "\\\"");
    }
    let cpf = Rng::for_item(scale.seed, CPF_SALT, customer).below(99_999_999_999);
    let jitter = |rng: &mut Rng| (rng.unit() - 0.5) * 0.1;
    out.push_str("{\"cpf\": \"");
    let _ = write!(out, "{cpf}\"");
    if !rng.chance(0.002) {
        let _ = write!(
            out,
            ", \"customer_id\": \"{}\"",
            scale.consumer_id(customer)
        );
    }
    let name = if rng.chance(0.001) {
        ""
    } else {
        scale.consumer_name(customer)
    };
    let _ = write!(
        out,
        ", \"customer_name\": \"{name}\", \"delivery_address_city\": \"{city}\", \"delivery_address_country\": \"BR\", \"delivery_address_district\": \"{}\", \"delivery_address_external_id\": \"{}\"",
        rng.pick(DISTRICTS),
        rng.below(10_000_000),
    );
    // The real data has latitude and longitude swapped; so does this.
    let _ = write!(
        out,
        ", \"delivery_address_latitude\": {:.2}, \"delivery_address_longitude\": {:.2}, \"delivery_address_state\": \"{state}\", \"delivery_address_zip_code\": \"{zip}{:03}\", \"items\": ",
        lon + jitter(&mut rng),
        lat + jitter(&mut rng),
        rng.below(1000),
    );
    push_json_str(out, &items);
    let scheduled = rng.chance(0.001);
    let _ = write!(
        out,
        ", \"merchant_id\": \"{}\", \"merchant_latitude\": {lon:.2}, \"merchant_longitude\": {lat:.2}, \"merchant_timezone\": \"{timezone}\", \"order_created_at\": \"{}\", \"order_id\": \"{order_id}\", \"order_scheduled\": {scheduled}, \"order_scheduled_date\": {}, \"order_total_amount\": {}, \"origin_platform\": \"{}\"}}",
        scale.restaurant_id(merchant),
        time(at),
        if scheduled {
            format!("\"{}\"", time(at + 2 * 3_600_000))
        } else {
            "null".into()
        },
        cents as f64 / 100.0,
        PLATFORMS[rng.weighted(&PLATFORMS.iter().map(|(_, w)| *w).collect::<Vec<_>>())].0,
    );
    out.push('\n');
}

const STATUS_NAMES: [&str; 4] = ["PLACED", "REGISTERED", "CONCLUDED", "CANCELLED"];

/// Every status event, sorted by time: (time, order index, status, written twice).
pub struct Statuses {
    events: Vec<(i64, u32, u8, bool)>,
}

impl Statuses {
    /// PLACED at the order's time; then REGISTERED within minutes and CONCLUDED within two hours,
    /// or (≈2.5 %) CANCELLED, half of them after REGISTERED. ≈2 % of rows are written twice.
    pub fn new(scale: &Scale, times: &[i64]) -> Self {
        let mut events = Vec::with_capacity(times.len() * 3);
        for (index, at) in times.iter().enumerate() {
            let mut rng = Rng::for_item(scale.seed, STATUS_SALT, index as u64);
            let order = index as u32;
            let mut push = |rng: &mut Rng, time: i64, status: u8| {
                events.push((time, order, status, rng.chance(0.02)))
            };
            push(&mut rng, *at, 0);
            if rng.chance(0.025) {
                if rng.chance(0.5) {
                    let registered = at + 30_000 + rng.below(5 * MINUTE_MS as u64) as i64;
                    push(&mut rng, registered, 1);
                }
                let time = at + 6 * MINUTE_MS + rng.below(55 * MINUTE_MS as u64) as i64;
                push(&mut rng, time, 3);
            } else {
                let time = at + 30_000 + rng.below(5 * MINUTE_MS as u64) as i64;
                push(&mut rng, time, 1);
                let time = at + 20 * MINUTE_MS + rng.below(100 * MINUTE_MS as u64) as i64;
                push(&mut rng, time, 2);
            }
        }
        events.sort_unstable();
        Self { events }
    }

    /// Distinct status events (without the duplicate rows).
    pub fn distinct(&self) -> usize {
        self.events.len()
    }

    pub fn duplicates(&self) -> usize {
        self.events.iter().filter(|e| e.3).count()
    }
}

pub fn status_line(scale: &Scale, statuses: &Statuses, index: usize, out: &mut String) {
    let (at, order, status, twice) = statuses.events[index];
    let status_id = Rng::for_item(
        scale.seed,
        STATUS_ID_SALT,
        u64::from(order) * 4 + u64::from(status),
    )
    .hex_id();
    let start = out.len();
    let _ = writeln!(
        out,
        "{{\"created_at\": \"{}\", \"order_id\": \"{}\", \"status_id\": \"{status_id}\", \"value\": \"{}\"}}",
        time(at),
        scale.order_id(u64::from(order)),
        STATUS_NAMES[status as usize],
    );
    if twice {
        let line = out[start..].to_owned();
        out.push_str(&line);
    }
}
