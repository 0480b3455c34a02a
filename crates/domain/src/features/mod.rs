//! Feature views: declared once (`config/features.toml`), computed identically online (the store
//! applies `updates_for` and serves `evaluate`) and offline (the same definitions and windows).

mod config;
mod definition;
mod evaluate;
mod updates;
mod window;

#[cfg(test)]
mod tests;

pub use config::{FeatureConfig, FilterConfig, SourceKeyConfig, ViewConfig, ViewsConfig};
pub use definition::{
    Aggregate, DefinitionError, FIXED_POINT, Feature, FeatureKind, FeatureView, FeatureViews,
    Filter, KeyRef, Measure, MeasureKind, SelectError, ViewSource,
};
pub use evaluate::{
    DistinctQuery, EntityState, FeatureValue, ReadPlan, StateRead, TierTiles, ValueStatus,
    WindowTotals, field, typed,
};
pub use updates::{Combine, EntityUpdate, StateOp, Target, TileValue};
pub use window::{BadWindow, Tier, Tile, Window};
