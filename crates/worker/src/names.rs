//! Dense ids for strings, each stored once: gold and history rows name far fewer distinct
//! entities, measures and members than they have rows.

use polars::prelude::*;

#[derive(Default)]
pub(crate) struct Names {
    ids: PlHashMap<String, u32>,
    names: Vec<String>,
}

impl Names {
    pub(crate) fn id(&mut self, name: &str) -> u32 {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = self.names.len() as u32;
        self.ids.insert(name.to_owned(), id);
        self.names.push(name.to_owned());
        id
    }

    pub(crate) fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    /// The names, in id order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    /// A string column of the names of `ids`.
    pub(crate) fn column(&self, name: &str, ids: &[u32]) -> Column {
        let values: Vec<&str> = ids.iter().map(|i| self.name(*i)).collect();
        Series::new(name.into(), values).into_column()
    }

    /// An `Int64` column of the xxh3-64 hashes of the names of `ids`, each name hashed once.
    pub(crate) fn hash_column(&self, name: &str, ids: &[u32]) -> Column {
        let hashes: Vec<i64> = self
            .names
            .iter()
            .map(|n| xxhash_rust::xxh3::xxh3_64(n.as_bytes()) as i64)
            .collect();
        let values: Vec<i64> = ids.iter().map(|i| hashes[*i as usize]).collect();
        Series::new(name.into(), values).into_column()
    }
}
