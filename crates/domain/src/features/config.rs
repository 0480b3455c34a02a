//! The shape of `config/features.toml`, as written by people; `FeatureViews::from_config` checks
//! it and builds the validated model.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewsConfig {
    #[serde(rename = "view", default)]
    pub views: Vec<ViewConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewConfig {
    pub name: String,
    /// The entity key's name in requests (`merchant_id`).
    pub key: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Values whose event time is older than this, relative to `as_of`, are `OUTSIDE_MAX_AGE`.
    #[serde(default)]
    pub max_age: Option<String>,
    /// Source name → the field of that source holding this view's key.
    pub sources: BTreeMap<String, SourceKeyConfig>,
    #[serde(rename = "feature", default)]
    pub features: Vec<FeatureConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SourceKeyConfig {
    /// The key is this field of the event (`merchant_id`).
    Field(String),
    /// The key is found through another view: `key` names the event's field holding that view's
    /// key, `via` = `"view.feature"` the `last` feature holding this view's key. Events whose
    /// `via` entity is not known yet wait for it.
    Via { key: String, via: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureConfig {
    pub name: String,
    /// last, count, sum, avg, min, max, count_distinct, most_frequent, ratio, minutes_between.
    pub agg: String,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub field: Option<String>,
    /// `lifetime` (default) or N followed by m, h or d.
    #[serde(default)]
    pub window: Option<String>,
    #[serde(default)]
    pub filter: Option<FilterConfig>,
    /// For ratio and minutes_between: the two features of this view it is computed from.
    #[serde(default)]
    pub of: Option<Vec<String>>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    pub field: String,
    pub equals: String,
}
