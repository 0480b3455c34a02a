//! Features computed in batch from the lake and materialized into the online store, served by
//! the same lookup route as the real-time views.

use crate::FieldType;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchFeature {
    pub name: &'static str,
    /// What the key is (`cpf`).
    pub key: &'static str,
    pub fields: &'static [(&'static str, FieldType)],
}

/// The original Airflow DAG's output: average `order_total_amount` per `cpf`.
pub const SIMPLE_FEATURE: BatchFeature = BatchFeature {
    name: "simple_feature",
    key: "cpf",
    fields: &[
        ("avg_order_total_amount", FieldType::Float),
        ("orders", FieldType::Integer),
        ("computed_at", FieldType::Time),
    ],
};

pub const BATCH_FEATURES: &[BatchFeature] = &[SIMPLE_FEATURE];
