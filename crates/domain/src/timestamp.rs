use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};

/// An instant, parsed from RFC 3339 and written back as `2019-01-25T01:05:07.000Z` (the format
/// of the original data), so that the same instant always has the same text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    /// 1970-01-01T00:00:00Z; stands in for a timestamp that failed to parse while the other
    /// fields are still checked. Never stored: the event is rejected.
    pub const EPOCH: Timestamp = Timestamp(DateTime::UNIX_EPOCH);

    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        DateTime::parse_from_rfc3339(text.trim())
            .ok()
            .map(|t| Self(t.with_timezone(&Utc)))
    }

    pub fn from_millis(millis: i64) -> Option<Self> {
        DateTime::from_timestamp_millis(millis).map(Self)
    }

    pub fn now() -> Self {
        Self(Utc::now())
    }

    pub fn millis(self) -> i64 {
        self.0.timestamp_millis()
    }

    /// The UTC date, `2019-01-25`: the lake's partition of an event.
    pub fn date(self) -> String {
        self.0.format("%Y-%m-%d").to_string()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Millis, true))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_instants_print_the_same_whatever_the_offset() {
        let a = Timestamp::parse_rfc3339("2019-01-25T01:05:07Z").unwrap();
        let b = Timestamp::parse_rfc3339("2019-01-24T23:05:07.000-02:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "2019-01-25T01:05:07.000Z");
    }

    #[test]
    fn non_rfc3339_text_is_rejected() {
        for bad in ["2019-01-25", "yesterday", "2019-01-25 01:05:07", ""] {
            assert!(Timestamp::parse_rfc3339(bad).is_none(), "{bad:?}");
        }
    }
}
