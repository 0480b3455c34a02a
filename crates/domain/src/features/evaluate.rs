//! Feature values from an entity's stored state at an `as_of` instant: the read half of the
//! window arithmetic, the same for a lookup today and a parity check tomorrow.

use std::collections::HashMap;

use serde_json::{Number, Value};

use crate::{FieldType, Tier, Tile, Timestamp};

use super::definition::{Aggregate, FIXED_POINT, FeatureKind, FeatureView, MeasureKind};

/// What the store holds for one entity of one view.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EntityState {
    /// The entity's hash; empty when the entity is unknown.
    pub fields: HashMap<String, String>,
    /// The tiles of [`ReadPlan::tiles`] the store holds, each with its packed measures
    /// ([`field::unpack`]).
    pub tiles: Vec<(Tier, Tile, String)>,
    /// Answers to [`ReadPlan::distinct`], in order.
    pub distinct: Vec<u64>,
    /// A number the ingest script raises whenever it changes anything of the entity (its hash,
    /// tiles or distinct sets), never handing out the same one twice; `None` when the store
    /// holds none. Read before the rest, so the rest is at least as new.
    pub version: Option<String>,
}

/// What a lookup at one `as_of` reads of each entity of a view besides its hash: the same for
/// every entity, and for every `as_of` with the same [`ReadPlan::key`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadPlan {
    /// Per tier, the tiles the view's windows cover.
    pub tiles: Vec<TierTiles>,
    pub distinct: Vec<DistinctQuery>,
}

/// The tiles of one tier a plan reads; never empty (a window covers at least one bucket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierTiles {
    pub tier: Tier,
    pub tiles: Vec<Tile>,
    /// Their field names ([`field::tile`]), in the same order.
    pub fields: Vec<String>,
}

impl ReadPlan {
    /// Instants with the same key have the same plan: windows end on bucket bounds, so a plan
    /// depends on `as_of` only through the bucket of each tier holding it.
    pub fn key(as_of_ms: i64) -> [i64; 2] {
        Tier::ALL.map(|tier| tier.bucket(as_of_ms))
    }
}

/// Count the members of distinct-set `measure` whose newest event time is in `(lo_ms, hi_ms]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistinctQuery {
    pub measure: String,
    pub lo_ms: i64,
    pub hi_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueStatus {
    Present,
    NotFound,
    OutsideMaxAge,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FeatureValue {
    /// Typed value; null unless `Present`.
    pub value: Value,
    /// Event time the value stems from: a `last` value's own, the entity's newest otherwise.
    pub time_ms: Option<i64>,
    pub status: ValueStatus,
}

impl FeatureValue {
    fn missing() -> Self {
        Self {
            value: Value::Null,
            time_ms: None,
            status: ValueStatus::NotFound,
        }
    }
}

/// Stored field names (written by the store adapter, read here).
pub mod field {
    /// The entity's newest event time, ms.
    pub const NEWEST: &str = "_t";
    /// Event time of a `last` value: `_t:{feature}`.
    pub fn last_time(feature: &str) -> String {
        format!("_t:{feature}")
    }
    /// The newest bucket index of a tier: `_mx{tag}`. Spelled out, not formatted: evaluation
    /// asks for it once per windowed feature.
    pub fn newest_bucket(tier: crate::Tier) -> &'static str {
        match tier {
            crate::Tier::Minute => "_mxm",
            crate::Tier::Hour => "_mxh",
        }
    }
    /// A tile, in its tier's hash: `{index}` for a single bucket, `{index}x{span}` otherwise.
    /// Its value packs every measure of the tier: `{measure}:{value}` joined by `,`.
    pub fn tile(tile: super::Tile) -> String {
        if tile.span == 1 {
            tile.index.to_string()
        } else {
            format!("{}x{}", tile.index, tile.span)
        }
    }
    /// The measures packed in a tile's value, skipping what does not parse.
    pub fn unpack(packed: &str) -> impl Iterator<Item = (&str, i64)> {
        packed.split(',').filter_map(|pair| {
            let (measure, value) = pair.split_once(':')?;
            Some((measure, value.parse().ok()?))
        })
    }
    pub fn lifetime(measure: &str) -> String {
        format!("l.{measure}")
    }
    /// A value counter of a most-frequent measure: `c.{measure}:{value}`.
    pub fn frequency(measure: &str, value: &str) -> String {
        format!("c.{measure}:{value}")
    }
}

impl FeatureView {
    /// What `evaluate` at `as_of` needs besides the entity's hash.
    pub fn read_plan(&self, as_of_ms: i64) -> ReadPlan {
        let mut tiles: Vec<(Tier, std::collections::BTreeSet<Tile>)> = Vec::new();
        for feature in &self.features {
            let FeatureKind::Aggregate { window, .. } = feature.kind else {
                continue;
            };
            let Some((tier, lo, hi)) = window.bucket_range(as_of_ms) else {
                continue;
            };
            let covering = tier.tiles(lo, hi);
            match tiles.iter_mut().find(|(t, _)| *t == tier) {
                Some((_, set)) => set.extend(covering),
                None => tiles.push((tier, covering.into_iter().collect())),
            }
        }
        ReadPlan {
            tiles: tiles
                .into_iter()
                .map(|(tier, set)| TierTiles {
                    tier,
                    fields: set.iter().copied().map(field::tile).collect(),
                    tiles: set.into_iter().collect(),
                })
                .collect(),
            distinct: self.distinct_queries(as_of_ms),
        }
    }

    /// The distinct counts `evaluate` needs at `as_of`, one per count_distinct feature.
    fn distinct_queries(&self, as_of_ms: i64) -> Vec<DistinctQuery> {
        self.features
            .iter()
            .filter_map(|feature| match feature.kind {
                FeatureKind::CountDistinct { measure, window } => {
                    let (lo_ms, hi_ms) = window.time_range(as_of_ms)?;
                    Some(DistinctQuery {
                        measure: self.measures[measure].id.clone(),
                        lo_ms,
                        hi_ms,
                    })
                }
                _ => None,
            })
            .collect()
    }

    /// Every feature of the view at `as_of`, in declaration order, from the online store's state.
    pub fn evaluate(&self, state: &EntityState, as_of_ms: i64) -> Vec<FeatureValue> {
        self.evaluate_from(&Parsed::new(state), as_of_ms)
    }

    /// Every window total `evaluate` at `as_of` can ask `state` for: all the tiles are needed
    /// for, and the same for every `as_of` with the same [`ReadPlan::key`].
    pub fn window_totals(&self, state: &EntityState, as_of_ms: i64) -> WindowTotals {
        let parsed = Parsed::new(state);
        let mut totals: Vec<WindowTotal> = Vec::new();
        for feature in &self.features {
            let FeatureKind::Aggregate {
                measure,
                count,
                window,
                ..
            } = feature.kind
            else {
                continue;
            };
            let Some((tier, lo, hi)) = window.bucket_range(as_of_ms) else {
                continue;
            };
            let kind = self.measures[measure].kind;
            for measure in [measure, count.unwrap_or(measure)] {
                let id = &self.measures[measure].id;
                let window = (tier, lo, hi, kind);
                if find(&totals, window, id).is_none() {
                    totals.push(WindowTotal {
                        window,
                        measure: id.clone(),
                        total: parsed.window(tier, id, lo, hi, kind),
                    });
                }
            }
        }
        WindowTotals(totals)
    }

    /// Every feature of the view at `as_of` from the entity's hash and distinct counts in
    /// `state` and its window totals in `totals` (taken at the same [`ReadPlan::key`]); tiles in
    /// `state` are not read.
    pub fn evaluate_with_totals(
        &self,
        state: &EntityState,
        totals: &WindowTotals,
        as_of_ms: i64,
    ) -> Vec<FeatureValue> {
        let read = Parsed {
            state,
            tiles: Vec::new(),
            totals: Some(totals),
        };
        self.evaluate_from(&read, as_of_ms)
    }

    /// Every feature of the view at `as_of`, in declaration order, from any [`StateRead`]: the
    /// online store and the offline engine share this code, so they cannot disagree on how a
    /// value is derived from what was aggregated.
    pub fn evaluate_from(&self, state: &impl StateRead, as_of_ms: i64) -> Vec<FeatureValue> {
        let exists = state.exists();
        let newest = state.newest();
        let mut distinct_index = 0;
        let mut values: Vec<FeatureValue> = Vec::with_capacity(self.features.len());
        for feature in &self.features {
            let aggregate = |value: Value| FeatureValue {
                value,
                time_ms: newest,
                status: ValueStatus::Present,
            };
            let value = match &feature.kind {
                FeatureKind::Last { .. } => {
                    self.last(state, &feature.name, feature.value_type, as_of_ms)
                }
                _ if !exists => FeatureValue::missing(),
                FeatureKind::Aggregate {
                    aggregate: op,
                    measure,
                    count,
                    window,
                } => {
                    // A window reaching behind the retention line has lost buckets: no value
                    // rather than a wrong one.
                    let range = window.bucket_range(as_of_ms);
                    if let Some((tier, lo, _)) = range
                        && state
                            .newest_bucket(tier)
                            .is_some_and(|n| lo < n - self.retention(tier))
                    {
                        values.push(FeatureValue::missing());
                        continue;
                    }
                    let kind = self.measures[*measure].kind;
                    let total = |id: &str| match range {
                        None => state.lifetime(id),
                        Some((tier, lo, hi)) => state.window(tier, id, lo, hi, kind),
                    };
                    let id = &self.measures[*measure].id;
                    match op {
                        Aggregate::Count => aggregate(Value::from(total(id).unwrap_or(0))),
                        Aggregate::Sum => {
                            aggregate(float(total(id).unwrap_or(0) as f64 / FIXED_POINT))
                        }
                        Aggregate::Min | Aggregate::Max => aggregate(
                            total(id).map_or(Value::Null, |v| float(v as f64 / FIXED_POINT)),
                        ),
                        Aggregate::Avg => {
                            let count_id = &self.measures[count.unwrap_or(*measure)].id;
                            match (total(id), total(count_id)) {
                                (Some(sum), Some(n)) if n > 0 => {
                                    aggregate(float(sum as f64 / FIXED_POINT / n as f64))
                                }
                                _ => FeatureValue::missing(),
                            }
                        }
                    }
                }
                FeatureKind::CountDistinct { window, .. } => {
                    let count = state.distinct(distinct_index);
                    distinct_index += 1;
                    let line = newest.map(|n| n - self.distinct_retention_ms);
                    match window.time_range(as_of_ms) {
                        Some((lo, _)) if line.is_some_and(|line| lo < line) => {
                            FeatureValue::missing()
                        }
                        _ => aggregate(Value::from(count)),
                    }
                }
                FeatureKind::MostFrequent { measure } => {
                    match state.most_frequent(&self.measures[*measure].id) {
                        Some(value) => aggregate(Value::String(value)),
                        None => FeatureValue::missing(),
                    }
                }
                FeatureKind::Ratio {
                    numerator,
                    denominator,
                } => {
                    match (
                        values[*numerator].value.as_f64(),
                        values[*denominator].value.as_f64(),
                    ) {
                        (Some(n), Some(d)) if d != 0.0 => aggregate(float(n / d)),
                        _ => FeatureValue::missing(),
                    }
                }
                FeatureKind::MinutesBetween { from, to } => {
                    let time =
                        |i: usize| values[i].value.as_str().and_then(Timestamp::parse_rfc3339);
                    match (time(*from), time(*to)) {
                        (Some(a), Some(b)) => FeatureValue {
                            value: float((b.millis() - a.millis()) as f64 / 60_000.0),
                            time_ms: values[*to].time_ms,
                            status: ValueStatus::Present,
                        },
                        _ => FeatureValue::missing(),
                    }
                }
            };
            values.push(value);
        }
        values
    }

    fn last(
        &self,
        state: &impl StateRead,
        feature: &str,
        value_type: FieldType,
        as_of_ms: i64,
    ) -> FeatureValue {
        let Some((text, time_ms)) = state.last(feature) else {
            return FeatureValue::missing();
        };
        let too_old = match (self.max_age.and_then(|w| w.millis()), time_ms) {
            (Some(max_age), Some(time)) => as_of_ms - time > max_age,
            _ => false,
        };
        if too_old {
            return FeatureValue {
                value: Value::Null,
                time_ms,
                status: ValueStatus::OutsideMaxAge,
            };
        }
        FeatureValue {
            value: typed(text, value_type),
            time_ms,
            status: ValueStatus::Present,
        }
    }
}

/// What evaluation reads of one entity's aggregated state: the online store's hashes, or the
/// offline engine's history cut at `as_of`.
pub trait StateRead {
    /// Whether any event has reached the entity.
    fn exists(&self) -> bool;
    /// The entity's newest event time, ms.
    fn newest(&self) -> Option<i64>;
    /// A `last` feature's stored text and its event time.
    fn last(&self, feature: &str) -> Option<(&str, Option<i64>)>;
    /// The newest bucket index of `tier` (what retention is measured from).
    fn newest_bucket(&self, tier: Tier) -> Option<i64>;
    /// A lifetime measure's total.
    fn lifetime(&self, measure: &str) -> Option<i64>;
    /// Measure `measure` combined over the buckets `(lo, hi]` of `tier`: added for counts and
    /// sums, min or max otherwise; `None` when no bucket holds it.
    fn window(&self, tier: Tier, measure: &str, lo: i64, hi: i64, kind: MeasureKind)
    -> Option<i64>;
    /// The most frequent value of a frequency measure (ties: the alphabetically first).
    fn most_frequent(&self, measure: &str) -> Option<String>;
    /// The answer to the `index`th of [`ReadPlan::distinct`].
    fn distinct(&self, index: usize) -> u64;
}

/// Stored text as a typed JSON value; text that does not parse as its type is served as text.
pub fn typed(text: &str, value_type: FieldType) -> Value {
    let parsed = match value_type {
        FieldType::Integer => text.parse::<i64>().ok().map(Value::from),
        FieldType::Float => text
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number),
        FieldType::Boolean => text.parse::<bool>().ok().map(Value::Bool),
        FieldType::Text | FieldType::Time => None,
    };
    parsed.unwrap_or_else(|| Value::String(text.to_owned()))
}

fn float(value: f64) -> Value {
    Number::from_f64(value).map_or(Value::Null, Value::Number)
}

fn parse_i64(text: Option<&String>) -> Option<i64> {
    text?.parse().ok()
}

/// The tiles of a state, parsed once per evaluation and sorted for lookup.
struct Parsed<'a> {
    state: &'a EntityState,
    tiles: Vec<((Tier, Tile), Measures<'a>)>,
    /// Window totals taken from the tiles earlier: when set, windows are answered from them.
    totals: Option<&'a WindowTotals>,
}

/// A tile's measures and their values.
type Measures<'a> = Vec<(&'a str, i64)>;

impl<'a> Parsed<'a> {
    fn new(state: &'a EntityState) -> Self {
        let mut tiles: Vec<_> = state
            .tiles
            .iter()
            .map(|(tier, tile, packed)| ((*tier, *tile), field::unpack(packed).collect()))
            .collect();
        tiles.sort_unstable_by_key(|(key, _)| *key);
        Self {
            state,
            tiles,
            totals: None,
        }
    }
}

impl StateRead for Parsed<'_> {
    fn exists(&self) -> bool {
        !self.state.fields.is_empty()
    }

    fn newest(&self) -> Option<i64> {
        parse_i64(self.state.fields.get(field::NEWEST))
    }

    fn last(&self, feature: &str) -> Option<(&str, Option<i64>)> {
        let text = self.state.fields.get(feature)?;
        let time = parse_i64(self.state.fields.get(&field::last_time(feature)));
        Some((text, time))
    }

    fn newest_bucket(&self, tier: Tier) -> Option<i64> {
        parse_i64(self.state.fields.get(field::newest_bucket(tier)))
    }

    fn lifetime(&self, measure: &str) -> Option<i64> {
        parse_i64(self.state.fields.get(&field::lifetime(measure)))
    }

    fn window(
        &self,
        tier: Tier,
        measure: &str,
        lo: i64,
        hi: i64,
        kind: MeasureKind,
    ) -> Option<i64> {
        if let Some(totals) = self.totals {
            return find(&totals.0, (tier, lo, hi, kind), measure).and_then(|t| t.total);
        }
        let inside = tier.tiles(lo, hi).into_iter().filter_map(|tile| {
            let at = self
                .tiles
                .binary_search_by_key(&(tier, tile), |(key, _)| *key);
            let measures = &self.tiles[at.ok()?].1;
            measures
                .iter()
                .find(|(m, _)| *m == measure)
                .map(|(_, v)| *v)
        });
        match kind {
            MeasureKind::Min => inside.min(),
            MeasureKind::Max => inside.max(),
            _ => inside.reduce(|a, b| a + b),
        }
    }

    fn most_frequent(&self, measure: &str) -> Option<String> {
        let prefix = field::frequency(measure, "");
        self.state
            .fields
            .iter()
            .filter_map(|(name, count)| {
                Some((name.strip_prefix(&prefix)?, count.parse::<i64>().ok()?))
            })
            .max_by(|(a_value, a_count), (b_value, b_count)| {
                a_count.cmp(b_count).then(b_value.cmp(a_value))
            })
            .map(|(value, _)| value.to_owned())
    }

    fn distinct(&self, index: usize) -> u64 {
        self.state.distinct.get(index).copied().unwrap_or(0)
    }
}

/// What an entity's windows add up to at one [`ReadPlan::key`]: each total
/// [`StateRead::window`] answers, by window and measure. Small (one integer per window and
/// measure), so lookups keep it between reads instead of the tiles.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WindowTotals(Vec<WindowTotal>);

#[derive(Debug, Clone, PartialEq)]
struct WindowTotal {
    window: (Tier, i64, i64, MeasureKind),
    measure: String,
    total: Option<i64>,
}

/// The total of `measure` over `window` (tier, first and last bucket, how measures combine).
fn find<'a>(
    totals: &'a [WindowTotal],
    window: (Tier, i64, i64, MeasureKind),
    measure: &str,
) -> Option<&'a WindowTotal> {
    totals
        .iter()
        .find(|t| t.window == window && t.measure == measure)
}
