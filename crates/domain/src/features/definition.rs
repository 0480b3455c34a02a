//! Validated feature views: what each view computes from which events. Built once at start-up
//! from `ViewsConfig`; every mistake is reported with the view and feature it is in.

use std::collections::BTreeSet;

use crate::{FeatureName, FieldType, Source, Tier, Window};

use super::config::{FeatureConfig, SourceKeyConfig, ViewConfig, ViewsConfig};

/// Fixed-point scale of stored sums, minima and maxima: integers are added exactly, so the
/// result does not depend on the order events arrive in.
pub const FIXED_POINT: f64 = 1_000_000.0;

#[derive(Debug, Clone, PartialEq)]
pub struct FeatureViews {
    views: Vec<FeatureView>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FeatureView {
    pub name: String,
    pub key: String,
    pub description: Option<String>,
    pub max_age: Option<Window>,
    pub sources: Vec<ViewSource>,
    pub features: Vec<Feature>,
    pub measures: Vec<Measure>,
    /// Per tier, buckets kept behind the entity's newest bucket.
    pub retention: Vec<(Tier, i64)>,
    /// How far behind the entity's newest event distinct members are kept, ms.
    pub distinct_retention_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ViewSource {
    pub source: Source,
    pub key: KeyRef,
}

#[derive(Debug, Clone, PartialEq)]
pub enum KeyRef {
    Field(String),
    Via {
        field: String,
        view: String,
        feature: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub field: String,
    pub equals: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Feature {
    pub name: String,
    pub description: Option<String>,
    pub kind: FeatureKind,
    /// How values are served: counts are integers, amounts floats, times RFC 3339 text.
    pub value_type: FieldType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    Count,
    Sum,
    Avg,
    Min,
    Max,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FeatureKind {
    /// The value of `field` in the entity's event with the newest event time (ties: the later
    /// arrival).
    Last {
        source: Source,
        field: String,
        filter: Option<Filter>,
    },
    /// `measure` indexes `FeatureView::measures`; avg also uses `count`.
    Aggregate {
        aggregate: Aggregate,
        measure: usize,
        count: Option<usize>,
        window: Window,
    },
    CountDistinct {
        measure: usize,
        window: Window,
    },
    /// The most frequent value over the lifetime; ties go to the alphabetically first.
    MostFrequent {
        measure: usize,
    },
    /// `features[numerator] / features[denominator]`; null when the denominator is 0.
    Ratio {
        numerator: usize,
        denominator: usize,
    },
    /// Minutes from the time in `features[from]` to the one in `features[to]`.
    MinutesBetween {
        from: usize,
        to: usize,
    },
}

/// A quantity stored per bucket (or lifetime) that one or more features read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measure {
    /// Short stable id used in stored field names, derived from what the measure is.
    pub id: String,
    pub source: Source,
    pub kind: MeasureKind,
    pub field: Option<String>,
    pub filter: Option<(String, String)>,
    pub tiers: BTreeSet<Tier>,
    pub lifetime: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MeasureKind {
    Count,
    Sum,
    Min,
    Max,
    Distinct,
    Frequency,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("feature views: {0}")]
pub struct DefinitionError(pub String);

impl FeatureViews {
    /// Validates `config`.
    ///
    /// # Errors
    /// The first problem found, naming its view and feature and what is valid.
    pub fn from_config(config: ViewsConfig) -> Result<Self, DefinitionError> {
        let mut views: Vec<FeatureView> = Vec::new();
        for view in &config.views {
            if views.iter().any(|v| v.name == view.name) {
                return Err(DefinitionError(format!(
                    "view `{}` is declared twice",
                    view.name
                )));
            }
            views.push(
                build_view(view)
                    .map_err(|e| DefinitionError(format!("view `{}`: {e}", view.name)))?,
            );
        }
        check_vias(&views)?;
        Ok(Self { views })
    }

    pub fn views(&self) -> &[FeatureView] {
        &self.views
    }

    pub fn view(&self, name: &str) -> Option<&FeatureView> {
        self.views.iter().find(|v| v.name == name)
    }

    /// Resolves `view:feature` references and whole-view names to (view, feature index), in
    /// the order given.
    ///
    /// # Errors
    /// [`SelectError::Unknown`] naming the first unknown reference, [`SelectError::Empty`].
    pub fn select(&self, references: &[String]) -> Result<Vec<(&FeatureView, usize)>, SelectError> {
        let mut selected = Vec::new();
        for reference in references {
            let unknown = || SelectError::Unknown(reference.chars().take(130).collect());
            match reference.split_once(':') {
                Some((view, feature)) => {
                    let view = self.view(view).ok_or_else(unknown)?;
                    selected.push((view, view.feature(feature).ok_or_else(unknown)?));
                }
                None => {
                    let view = self.view(reference).ok_or_else(unknown)?;
                    selected.extend((0..view.features.len()).map(|i| (view, i)));
                }
            }
        }
        if selected.is_empty() {
            return Err(SelectError::Empty);
        }
        Ok(selected)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error("unknown feature or view `{0}`")]
    Unknown(String),
    #[error("name at least one feature")]
    Empty,
}

impl FeatureView {
    pub fn feature(&self, name: &str) -> Option<usize> {
        self.features.iter().position(|f| f.name == name)
    }

    /// Whether the view's entities carry a version ([`EntityState::version`]): a lookup keeps what
    /// a full read of a versioned entity found and, while its version stays, reads the version
    /// alone. That saves reads only where a full read costs more than the version's: a view with
    /// windows or distinct counts reads tiles and sorted sets beside the hash. A view whose
    /// features all live in the entity's hash (`last`, lifetime totals, most frequent values) is
    /// read whole in one command either way, so its entities get no version, which saves the
    /// ingest a key write per event (the order view's: one per order and per status).
    ///
    /// [`EntityState::version`]: super::EntityState::version
    pub fn versioned(&self) -> bool {
        self.measures
            .iter()
            .any(|measure| !measure.tiers.is_empty() || measure.kind == MeasureKind::Distinct)
    }

    pub fn retention(&self, tier: Tier) -> i64 {
        self.retention
            .iter()
            .find(|(t, _)| *t == tier)
            .map_or(0, |(_, r)| *r)
    }
}

fn build_view(config: &ViewConfig) -> Result<FeatureView, String> {
    FeatureName::parse(&config.name).map_err(|e| e.to_string())?;
    if FeatureName::parse(&config.key).is_err() {
        return Err(format!(
            "key `{}` must be a lowercase identifier",
            config.key
        ));
    }
    let max_age = match &config.max_age {
        Some(text) => {
            let window: Window = text.parse().map_err(|e| format!("max_age: {e}"))?;
            if window.is_lifetime() {
                return Err("max_age cannot be `lifetime`".into());
            }
            Some(window)
        }
        None => None,
    };
    let mut sources = Vec::new();
    for (name, key) in &config.sources {
        let source: Source = name.parse().map_err(|e| format!("sources: {e}"))?;
        let key = match key {
            SourceKeyConfig::Field(field) => {
                text_field(source, field)?;
                KeyRef::Field(field.clone())
            }
            SourceKeyConfig::Via { key, via } => {
                text_field(source, key)?;
                let (view, feature) = via.split_once('.').ok_or_else(|| {
                    format!("source `{name}`: via must be `view.feature`, got `{via}`")
                })?;
                KeyRef::Via {
                    field: key.clone(),
                    view: view.into(),
                    feature: feature.into(),
                }
            }
        };
        sources.push(ViewSource { source, key });
    }
    let mut builder = ViewBuilder {
        sources: &sources,
        features: Vec::new(),
        measures: Vec::new(),
    };
    for feature in &config.features {
        builder
            .add(feature, &config.features)
            .map_err(|e| format!("feature `{}`: {e}", feature.name))?;
    }
    let ViewBuilder {
        features, measures, ..
    } = builder;
    let retention = retention(&features);
    let distinct_retention_ms = features
        .iter()
        .filter_map(|f| match f.kind {
            FeatureKind::CountDistinct { window, .. } => window.millis(),
            _ => None,
        })
        .max()
        .map_or(0, |ms| ms + Tier::Hour.slack() * Tier::Hour.width_ms());
    Ok(FeatureView {
        name: config.name.clone(),
        key: config.key.clone(),
        description: config.description.clone(),
        max_age,
        sources,
        features,
        measures,
        retention,
        distinct_retention_ms,
    })
}

/// Per tier: the longest window in buckets plus slack, so pruning never reaches into a window.
fn retention(features: &[Feature]) -> Vec<(Tier, i64)> {
    Tier::ALL
        .into_iter()
        .filter_map(|tier| {
            features
                .iter()
                .filter_map(|f| match f.kind {
                    FeatureKind::Aggregate { window, .. } if window.tier() == Some(tier) => {
                        window.buckets()
                    }
                    _ => None,
                })
                .max()
                .map(|buckets| (tier, buckets + tier.slack()))
        })
        .collect()
}

fn text_field(source: Source, field: &str) -> Result<FieldType, String> {
    let kind = source
        .field_type(field)
        .ok_or_else(|| unknown_field(source, field))?;
    Ok(kind)
}

fn unknown_field(source: Source, field: &str) -> String {
    let valid: Vec<&str> = source.fields().iter().map(|(name, _)| *name).collect();
    format!(
        "unknown field `{field}` of source `{source}`; valid fields: {}",
        valid.join(", ")
    )
}

fn check_vias(views: &[FeatureView]) -> Result<(), DefinitionError> {
    for view in views {
        for source in &view.sources {
            let KeyRef::Via {
                view: target,
                feature,
                ..
            } = &source.key
            else {
                continue;
            };
            let found = views.iter().find(|v| &v.name == target).and_then(|v| {
                v.features
                    .iter()
                    .find(|f| &f.name == feature && matches!(f.kind, FeatureKind::Last { .. }))
            });
            if found.is_none() {
                return Err(DefinitionError(format!(
                    "view `{}`, source `{}`: via `{target}.{feature}` must name a `last` feature of another view",
                    view.name, source.source
                )));
            }
        }
    }
    Ok(())
}

struct ViewBuilder<'a> {
    sources: &'a [ViewSource],
    features: Vec<Feature>,
    measures: Vec<Measure>,
}

impl ViewBuilder<'_> {
    fn add(&mut self, config: &FeatureConfig, all: &[FeatureConfig]) -> Result<(), String> {
        FeatureName::parse(&config.name).map_err(|e| e.to_string())?;
        if config.name == "id" || self.features.iter().any(|f| f.name == config.name) {
            return Err("the name is taken (`id` is the entity key in answers)".into());
        }
        let window: Window = config
            .window
            .as_deref()
            .unwrap_or("lifetime")
            .parse()
            .map_err(|e| format!("{e}"))?;
        let (kind, value_type) = match config.agg.as_str() {
            "ratio" | "minutes_between" => self.derived(config, all)?,
            "last" => {
                let (source, field, kind) = self.source_field(config, false)?;
                no_window(config)?;
                let filter = self.filter(config, source)?;
                (
                    FeatureKind::Last {
                        source,
                        field,
                        filter,
                    },
                    kind,
                )
            }
            "count" => {
                let source = self.source(config)?;
                let measure = self.measure(
                    source,
                    MeasureKind::Count,
                    None,
                    self.filter_pair(config, source)?,
                    window,
                );
                (
                    FeatureKind::Aggregate {
                        aggregate: Aggregate::Count,
                        measure,
                        count: None,
                        window,
                    },
                    FieldType::Integer,
                )
            }
            "sum" | "avg" | "min" | "max" => {
                let (source, field, _) = self.source_field(config, true)?;
                let filter = self.filter_pair(config, source)?;
                let (aggregate, kind) = match config.agg.as_str() {
                    "sum" => (Aggregate::Sum, MeasureKind::Sum),
                    "avg" => (Aggregate::Avg, MeasureKind::Sum),
                    "min" => (Aggregate::Min, MeasureKind::Min),
                    _ => (Aggregate::Max, MeasureKind::Max),
                };
                let measure = self.measure(source, kind, Some(field), filter.clone(), window);
                let count = (aggregate == Aggregate::Avg)
                    .then(|| self.measure(source, MeasureKind::Count, None, filter, window));
                (
                    FeatureKind::Aggregate {
                        aggregate,
                        measure,
                        count,
                        window,
                    },
                    FieldType::Float,
                )
            }
            "count_distinct" => {
                if window.is_lifetime() {
                    return Err("count_distinct needs a window (its memory grows with it)".into());
                }
                let (source, field, _) = self.source_field(config, false)?;
                let filter = self.filter_pair(config, source)?;
                let measure =
                    self.measure(source, MeasureKind::Distinct, Some(field), filter, window);
                (
                    FeatureKind::CountDistinct { measure, window },
                    FieldType::Integer,
                )
            }
            "most_frequent" => {
                no_window(config)?;
                let (source, field, _) = self.source_field(config, false)?;
                let filter = self.filter_pair(config, source)?;
                let measure = self.measure(
                    source,
                    MeasureKind::Frequency,
                    Some(field),
                    filter,
                    Window::LIFETIME,
                );
                (FeatureKind::MostFrequent { measure }, FieldType::Text)
            }
            other => {
                return Err(format!(
                    "unknown agg `{other}`; valid: last, count, sum, avg, min, max, count_distinct, most_frequent, ratio, minutes_between"
                ));
            }
        };
        self.features.push(Feature {
            name: config.name.clone(),
            description: config.description.clone(),
            kind,
            value_type,
        });
        Ok(())
    }

    fn source(&self, config: &FeatureConfig) -> Result<Source, String> {
        let name = config.source.as_deref().ok_or("`source` is required")?;
        let source: Source = name.parse().map_err(|e| format!("{e}"))?;
        if !self.sources.iter().any(|s| s.source == source) {
            return Err(format!("source `{source}` is not among the view's sources"));
        }
        Ok(source)
    }

    fn source_field(
        &self,
        config: &FeatureConfig,
        numeric: bool,
    ) -> Result<(Source, String, FieldType), String> {
        let source = self.source(config)?;
        let field = config.field.as_deref().ok_or("`field` is required")?;
        let kind = text_field(source, field)?;
        if numeric && !kind.is_numeric() {
            return Err(format!("field `{field}` is not numeric"));
        }
        Ok((source, field.to_owned(), kind))
    }

    fn filter(&self, config: &FeatureConfig, source: Source) -> Result<Option<Filter>, String> {
        Ok(self
            .filter_pair(config, source)?
            .map(|(field, equals)| Filter { field, equals }))
    }

    fn filter_pair(
        &self,
        config: &FeatureConfig,
        source: Source,
    ) -> Result<Option<(String, String)>, String> {
        match &config.filter {
            None => Ok(None),
            Some(filter) => {
                text_field(source, &filter.field).map_err(|e| format!("filter: {e}"))?;
                Ok(Some((filter.field.clone(), filter.equals.clone())))
            }
        }
    }

    /// The index of the measure for `(source, kind, field, filter)`, created on first use; the
    /// window adds the tier (or lifetime) it must be kept at.
    fn measure(
        &mut self,
        source: Source,
        kind: MeasureKind,
        field: Option<String>,
        filter: Option<(String, String)>,
        window: Window,
    ) -> usize {
        let index = match self.measures.iter().position(|m| {
            m.source == source && m.kind == kind && m.field == field && m.filter == filter
        }) {
            Some(index) => index,
            None => {
                let descriptor = format!(
                    "{source}|{kind:?}|{}|{:?}",
                    field.as_deref().unwrap_or(""),
                    filter
                );
                let id = format!(
                    "{:08x}",
                    xxhash_rust::xxh3::xxh3_64(descriptor.as_bytes()) as u32
                );
                self.measures.push(Measure {
                    id,
                    source,
                    kind,
                    field,
                    filter,
                    tiers: BTreeSet::new(),
                    lifetime: false,
                });
                self.measures.len() - 1
            }
        };
        let measure = &mut self.measures[index];
        match window.tier() {
            Some(tier) if kind != MeasureKind::Distinct => {
                measure.tiers.insert(tier);
            }
            Some(_) => {}
            None => measure.lifetime = true,
        }
        index
    }

    fn derived(
        &self,
        config: &FeatureConfig,
        all: &[FeatureConfig],
    ) -> Result<(FeatureKind, FieldType), String> {
        no_window(config)?;
        let of = config.of.as_deref().unwrap_or_default();
        let [first, second] = of else {
            return Err("`of` must name two features of this view".into());
        };
        let position = |name: &str| {
            self.features
                .iter()
                .position(|f| f.name == name)
                .ok_or_else(|| {
                    let later = all.iter().any(|f| f.name == name);
                    if later {
                        format!("`{name}` must be declared before this feature")
                    } else {
                        format!("unknown feature `{name}`")
                    }
                })
        };
        let (a, b) = (position(first)?, position(second)?);
        if config.agg == "ratio" {
            if !(self.features[a].value_type.is_numeric()
                && self.features[b].value_type.is_numeric())
            {
                return Err("ratio needs two numeric features".into());
            }
            Ok((
                FeatureKind::Ratio {
                    numerator: a,
                    denominator: b,
                },
                FieldType::Float,
            ))
        } else {
            let is_time = |i: usize| {
                matches!(self.features[i].kind, FeatureKind::Last { .. })
                    && self.features[i].value_type == FieldType::Time
            };
            if !(is_time(a) && is_time(b)) {
                return Err("minutes_between needs two `last` features of a time field".into());
            }
            Ok((
                FeatureKind::MinutesBetween { from: a, to: b },
                FieldType::Float,
            ))
        }
    }
}

fn no_window(config: &FeatureConfig) -> Result<(), String> {
    match config.window.as_deref() {
        None | Some("lifetime") => Ok(()),
        Some(_) => Err(format!("agg `{}` takes no window", config.agg)),
    }
}
