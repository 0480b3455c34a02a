//! Encodes the domain's entity updates as the operation lists `ingest.lua` interprets.

use larder_domain::{Combine, EntityUpdate, StateOp, Target, Tile, field};
use serde_json::{Value, json};

fn combine(how: Combine) -> &'static str {
    match how {
        Combine::Add => "add",
        Combine::Min => "min",
        Combine::Max => "max",
    }
}

fn op(op: &StateOp) -> Value {
    match op {
        StateOp::Touch { time_ms } => json!(["touch", time_ms]),
        StateOp::Last {
            feature,
            value,
            time_ms,
        } => json!(["last", feature, value, time_ms]),
        StateOp::Tiles {
            tier,
            bucket,
            values,
            retention,
            prune_every,
        } => {
            let values: Vec<Value> = values
                .iter()
                .map(|v| json!([v.measure, combine(v.combine), v.value]))
                .collect();
            // The tile holding the bucket in every span, named by the domain: the script
            // writes exactly these fields, and lookups ask for fields named the same way.
            let fields: Vec<String> = tier
                .spans()
                .iter()
                .map(|&span| field::tile(Tile::containing(span, *bucket)))
                .collect();
            json!([
                "tiles",
                tier.tag(),
                bucket,
                retention,
                prune_every,
                fields,
                values
            ])
        }
        StateOp::Lifetime {
            measure,
            combine: how,
            value,
        } => json!(["lifetime", measure, combine(*how), value]),
        StateOp::Distinct {
            measure,
            member,
            time_ms,
            retention_ms,
        } => {
            json!(["distinct", measure, member, time_ms, retention_ms])
        }
        StateOp::Frequency { measure, value } => json!(["frequency", measure, value]),
        StateOp::Drain { view, key } => json!(["drain", view, key]),
    }
}

/// The five script arguments of one group: view, via view, via feature, key, operations.
pub(crate) fn group_args(update: &EntityUpdate) -> [String; 5] {
    // An entity of a view without versions says so first, before any operation writes it; a
    // script or module that does not know the operation skips it and versions the entity, as
    // before.
    let unversioned = (!update.versioned).then(|| json!(["unversioned"]));
    let ops = unversioned.into_iter().chain(update.ops.iter().map(op));
    let ops = Value::Array(ops.collect()).to_string();
    match &update.target {
        Target::Key(key) => [
            update.view.clone(),
            String::new(),
            String::new(),
            key.clone(),
            ops,
        ],
        Target::Via { view, key, feature } => [
            update.view.clone(),
            view.clone(),
            feature.clone(),
            key.clone(),
            ops,
        ],
    }
}
