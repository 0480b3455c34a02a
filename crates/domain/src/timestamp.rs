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

    /// The text of [`Display`](fmt::Display) as its 24 ASCII bytes, computed from the
    /// milliseconds with integer arithmetic: a batch lookup writes one per cell, and chrono's
    /// formatter (or its calendar accessors, each converting the instant again) cost several
    /// times as much. `None` for the instants whose text is longer or odd: years outside
    /// 0–9999, which RFC 3339 cannot write in four digits, and leap seconds.
    pub fn rfc3339_ascii(self) -> Option<[u8; 24]> {
        if self.0.timestamp_subsec_nanos() >= 1_000_000_000 {
            return None;
        }
        Self::rfc3339_ascii_of_millis(self.millis())
    }

    /// [`Self::rfc3339_ascii`] of the instant `ms` milliseconds after the epoch, without
    /// building a `Timestamp` (a conversion to and from chrono's calendar each way).
    pub fn rfc3339_ascii_of_millis(ms: i64) -> Option<[u8; 24]> {
        let (year, month, day) = civil_date(ms.div_euclid(DAY_MS));
        if !(0..=9999).contains(&year) {
            return None;
        }
        let of_day = ms.rem_euclid(DAY_MS);
        let mut text = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, digits: usize, mut value: i64| {
            for i in (at..at + digits).rev() {
                text[i] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, month);
        put(8, 2, day);
        put(11, 2, of_day / 3_600_000);
        put(14, 2, of_day / 60_000 % 60);
        put(17, 2, of_day / 1000 % 60);
        put(20, 3, of_day % 1000);
        Some(text)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rfc3339_ascii() {
            Some(text) => f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?),
            None => f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Millis, true)),
        }
    }
}

const DAY_MS: i64 = 86_400_000;

/// Year, month and day of the `days`th day since 1970-01-01 in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_date(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
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
    fn it_prints_what_chrono_prints() {
        let chrono = |t: Timestamp| t.0.to_rfc3339_opts(SecondsFormat::Millis, true);
        let mut ms: i64 = -62_167_219_200_000; // 0000-01-01
        while ms < 253_402_300_800_000 {
            let t = Timestamp::from_millis(ms).unwrap();
            assert_eq!(t.to_string(), chrono(t), "{ms}");
            ms += 7_919_876_543; // about 92 days and an odd number of ms
        }
        for ms in [0, 1, 999, 1_548_000_000_123, 951_782_400_000, -1] {
            let t = Timestamp::from_millis(ms).unwrap();
            assert_eq!(t.to_string(), chrono(t), "{ms}");
        }
        let far = Timestamp::from_millis(253_402_300_800_000).unwrap();
        assert_eq!(far.to_string(), "+10000-01-01T00:00:00.000Z");
    }

    #[test]
    fn non_rfc3339_text_is_rejected() {
        for bad in ["2019-01-25", "yesterday", "2019-01-25 01:05:07", ""] {
            assert!(Timestamp::parse_rfc3339(bad).is_none(), "{bad:?}");
        }
    }
}
