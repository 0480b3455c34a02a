use larder_domain::{Source, Tier};

/// The names of larder's Redis keys, all under one prefix.
#[derive(Debug, Clone, Default)]
pub struct KeySpace {
    prefix: String,
}

impl KeySpace {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `raw_{source}:{id}`: the latest raw record, as in the original API.
    pub fn raw(&self, source: Source, id: &str) -> String {
        format!("{}raw_{source}:{id}", self.prefix)
    }

    /// `seen:{source}:{id}`: the fingerprint of the last stored content of this record.
    pub fn seen(&self, source: Source, id: &str) -> String {
        format!("{}seen:{source}:{id}", self.prefix)
    }

    /// `events:{source}`: the durable event log the lake writer consumes.
    pub fn stream(&self, source: Source) -> String {
        format!("{}events:{source}", self.prefix)
    }

    /// `rtf_{view}:{key}`: an entity's feature state, as the original API named it.
    pub fn entity(&self, view: &str, key: &str) -> String {
        format!("{}rtf_{view}:{key}", self.prefix)
    }

    /// `{rtf_{view}:{key}}:d:{measure}`: a distinct-count set, in the entity's hash slot.
    pub fn distinct(&self, view: &str, key: &str, measure: &str) -> String {
        format!("{}{{rtf_{view}:{key}}}:d:{measure}", self.prefix)
    }

    /// `{rtf_{view}:{key}}:v`: an entity's version (see [`EntityState::version`]), in the
    /// entity's hash slot. A key of its own, not a field of the hash, so that a batch of lookups
    /// checks the versions of all its entities with one `MGET`.
    ///
    /// [`EntityState::version`]: larder_domain::EntityState::version
    pub fn version(&self, view: &str, key: &str) -> String {
        format!("{}{{rtf_{view}:{key}}}:v", self.prefix)
    }

    /// `{rtf_{view}:{key}}:{tag}`: an entity's buckets of one tier, in the entity's hash slot.
    pub fn buckets(&self, view: &str, key: &str, tier: Tier) -> String {
        format!("{}{{rtf_{view}:{key}}}:{}", self.prefix, tier.tag())
    }

    /// `{events:{source}}:claimed`: the last id of the batch the lake writer took and has not
    /// acknowledged yet, in the stream's hash slot.
    pub fn claimed(&self, source: Source) -> String {
        format!("{{{}}}:claimed", self.stream(source))
    }

    /// The newest event time seen, ms: the default `as_of`.
    pub fn clock(&self) -> String {
        format!("{}larder:clock", self.prefix)
    }

    /// The raw hashes to delete once `raw_ttl_secs` old, `{ms}:{key}` in arrival order (see
    /// ingest.lua).
    pub fn raw_expiry(&self) -> String {
        format!("{}larder:raw-expiry", self.prefix)
    }

    /// A lease (`larder:lease:{name}`) held by one worker process at a time.
    pub fn lease(&self, name: &str) -> String {
        format!("{}larder:lease:{name}", self.prefix)
    }

    /// The record of a job run.
    pub fn job(&self, id: &str) -> String {
        format!("{}larder:job:{id}", self.prefix)
    }

    /// How many entities a view holds.
    pub fn entity_count(&self, view: &str) -> String {
        format!("{}larder:entities:{view}", self.prefix)
    }

    /// The `SCAN` pattern matching every entity hash of `view`.
    pub fn entity_pattern(&self, view: &str) -> String {
        format!("{}rtf_{view}:*", self.prefix)
    }

    /// The entity key of a key matched by [`Self::entity_pattern`].
    pub fn parse_entity<'a>(&self, view: &str, key: &'a str) -> Option<&'a str> {
        key.strip_prefix(&self.prefix)?
            .strip_prefix("rtf_")?
            .strip_prefix(view)?
            .strip_prefix(':')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_keys_round_trip_through_their_parser() {
        let keys = KeySpace::new("t1:");
        let key = keys.entity("restaurant", "abc");
        assert_eq!(key, "t1:rtf_restaurant:abc");
        assert_eq!(keys.parse_entity("restaurant", &key), Some("abc"));
        assert_eq!(
            keys.parse_entity("restaurant", "t2:rtf_restaurant:abc"),
            None
        );
        assert_eq!(keys.parse_entity("order", &key), None);
    }

    #[test]
    fn an_entitys_keys_share_its_cluster_hash_slot() {
        let keys = KeySpace::default();
        // The hash tag {rtf_restaurant:abc} of the set is the whole name of the entity's hash.
        assert_eq!(
            keys.distinct("restaurant", "abc", "m1"),
            "{rtf_restaurant:abc}:d:m1"
        );
        assert_eq!(keys.version("restaurant", "abc"), "{rtf_restaurant:abc}:v");
        // And a stream's claim is in the stream's.
        assert_eq!(keys.claimed(Source::Order), "{events:order}:claimed");
    }

    #[test]
    fn key_names_match_the_original_api() {
        let keys = KeySpace::default();
        assert_eq!(keys.raw(Source::Order, "o1"), "raw_order:o1");
        assert_eq!(keys.stream(Source::Status), "events:status");
    }
}
