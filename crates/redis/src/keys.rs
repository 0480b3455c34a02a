use larder_domain::Source;

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

    /// `rtf_{feature}:{key}`: a real-time feature hash, as in the original API.
    pub fn feature(&self, feature: &str, key: &str) -> String {
        format!("{}rtf_{feature}:{key}", self.prefix)
    }

    /// The `SCAN` pattern matching every feature hash.
    pub fn feature_pattern(&self) -> String {
        format!("{}rtf_*", self.prefix)
    }

    /// Splits a key matched by [`Self::feature_pattern`] into `(feature, key)`.
    pub fn parse_feature(&self, key: &str) -> Option<(String, String)> {
        let rest = key.strip_prefix(&self.prefix)?.strip_prefix("rtf_")?;
        let (feature, entity) = rest.split_once(':')?;
        Some((feature.to_owned(), entity.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_keys_round_trip_through_their_parser() {
        let keys = KeySpace::new("t1:");
        let key = keys.feature("restaurant", "abc");
        assert_eq!(key, "t1:rtf_restaurant:abc");
        assert_eq!(
            keys.parse_feature(&key),
            Some(("restaurant".into(), "abc".into()))
        );
        assert_eq!(keys.parse_feature("t2:rtf_restaurant:abc"), None);
    }

    #[test]
    fn key_names_match_the_original_api() {
        let keys = KeySpace::default();
        assert_eq!(keys.raw(Source::Order, "o1"), "raw_order:o1");
        assert_eq!(keys.stream(Source::Status), "events:status");
    }
}
