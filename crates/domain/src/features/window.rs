//! Event-time windows and the buckets that approximate them, shared by the online store and the
//! offline engine so both count exactly the same events.
//!
//! Buckets are right-closed: bucket `i` of a tier of width `g` holds event times in
//! `((i-1)·g, i·g]`, so `i = ceil(t / g)`. A window of `n` buckets evaluated at `as_of` covers
//! buckets `(C - n, C]` with `C = ceil(as_of / g)`, that is event times in `(C·g - w, C·g]`. When
//! `as_of` falls on a bucket boundary this is exactly `(as_of - w, as_of]`; otherwise the window
//! ends at the next boundary (by default `as_of` is the newest event, so nothing lies beyond it)
//! and starts less than one bucket after `as_of - w`.

use std::{fmt, str::FromStr};

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// Bucket granularity: one minute for windows up to 24 h, one hour beyond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    Minute,
    Hour,
}

impl Tier {
    pub const ALL: [Tier; 2] = [Tier::Minute, Tier::Hour];

    pub fn width_ms(self) -> i64 {
        match self {
            Tier::Minute => MINUTE_MS,
            Tier::Hour => HOUR_MS,
        }
    }

    /// One letter naming the tier in stored field names (`m`, `h`).
    pub fn tag(self) -> &'static str {
        match self {
            Tier::Minute => "m",
            Tier::Hour => "h",
        }
    }

    /// Buckets kept beyond the longest window of the tier: how far before an entity's newest
    /// event a window of maximal length can still end (`as_of`) and be evaluated whole.
    pub fn slack(self) -> i64 {
        match self {
            Tier::Minute => 24 * 60,
            Tier::Hour => 7 * 24,
        }
    }

    /// How often (in buckets of newest-event progress) old buckets are deleted: pruning walks
    /// every field of the tier hash, so it runs in batches, not on every event: a day of
    /// minutes, a week of hours. A busy restaurant's hour tier holds hundreds of tiles (592 three
    /// weeks into the generated data): walking them every 48 hours cost a replay at full-scale
    /// density 6 % of Redis' time, and more the longer the history. The price is a tier hash up
    /// to 38 % (minutes) or 13 % (hours) longer.
    pub fn prune_every(self) -> i64 {
        match self {
            Tier::Minute => 24 * 60,
            Tier::Hour => 7 * 24,
        }
    }

    /// The bucket holding event time `ms`: `ceil(ms / width)`.
    pub fn bucket(self, ms: i64) -> i64 {
        ceil_div(ms, self.width_ms())
    }

    /// The tile spans the store keeps, in buckets, finest first; each divides the next. Every
    /// event is added to one tile of each span, so a window reads a few coarse tiles in its
    /// middle and fine ones only at its edges: at most 18 tiles for any window of minutes
    /// (5-, 15-, 60- and 240-minute tiles), 20 for any window of hours up to 30 days (6-hour,
    /// day and week tiles). More spans would mean fewer tiles to read and more to write.
    pub fn spans(self) -> &'static [i64] {
        match self {
            Tier::Minute => &[1, 5, 15, 60, 240],
            Tier::Hour => &[1, 6, 24, 168],
        }
    }

    /// The fewest tiles that cover buckets `(lo, hi]` exactly, each once.
    pub fn tiles(self, lo: i64, hi: i64) -> Vec<Tile> {
        let mut tiles = Vec::new();
        cover(self.spans(), lo, hi, &mut tiles);
        tiles
    }
}

fn ceil_div(n: i64, d: i64) -> i64 {
    n.div_euclid(d) + i64::from(n.rem_euclid(d) != 0)
}

/// `span` consecutive buckets of a tier: buckets `(span·(index-1), span·index]`. A tile of span 1
/// is a single bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tile {
    pub span: i64,
    pub index: i64,
}

impl Tile {
    /// The tile of `span` holding `bucket`.
    pub fn containing(span: i64, bucket: i64) -> Tile {
        Tile {
            span,
            index: ceil_div(bucket, span),
        }
    }

    /// Its first bucket minus one: the tile covers `(first_behind, first_behind + span]`.
    pub fn first_behind(self) -> i64 {
        self.span * (self.index - 1)
    }
}

/// Covers `(lo, hi]` with the coarsest tiles of `spans` (finest first) that fit, recursing into
/// the finer spans for the ragged edges.
fn cover(spans: &[i64], lo: i64, hi: i64, out: &mut Vec<Tile>) {
    let Some((&span, finer)) = spans.split_last() else {
        return;
    };
    if lo >= hi {
        return;
    }
    // Tiles `first + 1 ..= last` of this span lie wholly inside `(lo, hi]`.
    let (first, last) = (ceil_div(lo, span), hi.div_euclid(span));
    if first < last && !finer.is_empty() {
        cover(finer, lo, first * span, out);
        out.extend((first + 1..=last).map(|index| Tile { span, index }));
        cover(finer, last * span, hi, out);
    } else if finer.is_empty() {
        out.extend((lo + 1..=hi).map(|index| Tile { span, index }));
    } else {
        cover(finer, lo, hi, out);
    }
}

/// A span of event time a feature aggregates over, or the entity's whole lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    /// `None` for lifetime.
    millis: Option<i64>,
}

impl Window {
    pub const LIFETIME: Window = Window { millis: None };

    pub fn is_lifetime(self) -> bool {
        self.millis.is_none()
    }

    pub fn millis(self) -> Option<i64> {
        self.millis
    }

    /// The tier whose buckets evaluate this window; `None` for lifetime.
    pub fn tier(self) -> Option<Tier> {
        self.millis.map(|ms| {
            if ms <= DAY_MS {
                Tier::Minute
            } else {
                Tier::Hour
            }
        })
    }

    /// How many buckets of its tier the window spans.
    pub fn buckets(self) -> Option<i64> {
        Some(self.millis? / self.tier()?.width_ms())
    }

    /// The buckets `(lo, hi]` the window covers at `as_of`.
    pub fn bucket_range(self, as_of_ms: i64) -> Option<(Tier, i64, i64)> {
        let tier = self.tier()?;
        let hi = tier.bucket(as_of_ms);
        Some((tier, hi - self.buckets()?, hi))
    }

    /// The event times `(lo, hi]` the window covers at `as_of`, bucket-aligned.
    pub fn time_range(self, as_of_ms: i64) -> Option<(i64, i64)> {
        let (tier, lo, hi) = self.bucket_range(as_of_ms)?;
        Some((lo * tier.width_ms(), hi * tier.width_ms()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "bad window `{0}`: use `lifetime` or N followed by m, h or d (e.g. 90m, 24h, 7d); windows over 24h must be whole hours"
)]
pub struct BadWindow(pub String);

impl FromStr for Window {
    type Err = BadWindow;

    fn from_str(text: &str) -> Result<Self, BadWindow> {
        let bad = || BadWindow(text.to_owned());
        if text == "lifetime" {
            return Ok(Window::LIFETIME);
        }
        let split = text.len().checked_sub(1).ok_or_else(bad)?;
        let (digits, unit) = text.split_at(split);
        let count: i64 = digits.parse().map_err(|_| bad())?;
        let unit_ms = match unit {
            "m" => MINUTE_MS,
            "h" => HOUR_MS,
            "d" => DAY_MS,
            _ => return Err(bad()),
        };
        // 366 days bounds the arithmetic and the bucket count.
        if count <= 0 || count > 366 * DAY_MS / unit_ms {
            return Err(bad());
        }
        let window = Window {
            millis: Some(count * unit_ms),
        };
        let whole_buckets = window
            .tier()
            .is_some_and(|tier| count * unit_ms % tier.width_ms() == 0);
        if whole_buckets {
            Ok(window)
        } else {
            Err(bad())
        }
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.millis {
            None => f.write_str("lifetime"),
            Some(ms) if ms > DAY_MS && ms % DAY_MS == 0 => write!(f, "{}d", ms / DAY_MS),
            Some(ms) if ms % HOUR_MS == 0 => write!(f, "{}h", ms / HOUR_MS),
            Some(ms) => write!(f, "{}m", ms / MINUTE_MS),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_547_856_000_000; // 2019-01-19T00:00:00Z, a day boundary

    fn window(text: &str) -> Window {
        text.parse().unwrap()
    }

    #[test]
    fn windows_parse_and_print() {
        for text in ["1m", "90m", "1h", "24h", "25h", "7d", "30d", "lifetime"] {
            assert_eq!(
                window(text).to_string().parse::<Window>().unwrap(),
                window(text),
                "{text}"
            );
        }
        assert_eq!(window("1440m").to_string(), "24h");
        assert_eq!(window("1d").to_string(), "24h");
        assert_eq!(window("168h").to_string(), "7d");
        for bad in ["", "0h", "-1h", "1w", "h", "1.5h", "1441m", "400d", "24"] {
            assert!(bad.parse::<Window>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn short_windows_use_minute_buckets_and_long_ones_hour_buckets() {
        assert_eq!(window("24h").tier(), Some(Tier::Minute));
        assert_eq!(window("24h").buckets(), Some(1440));
        assert_eq!(window("25h").tier(), Some(Tier::Hour));
        assert_eq!(window("30d").buckets(), Some(720));
        assert_eq!(Window::LIFETIME.tier(), None);
    }

    #[test]
    fn buckets_are_right_closed() {
        assert_eq!(Tier::Minute.bucket(T0), T0 / 60_000);
        assert_eq!(Tier::Minute.bucket(T0 + 1), T0 / 60_000 + 1);
        assert_eq!(Tier::Minute.bucket(T0 + 60_000), T0 / 60_000 + 1);
        assert_eq!(Tier::Minute.bucket(-1), 0);
        assert_eq!(Tier::Minute.bucket(-60_000), -1);
    }

    /// Whether an event at `event_ms` is inside `w` evaluated at `as_of`, by the bucket rule.
    fn inside(w: &str, event_ms: i64, as_of: i64) -> bool {
        let (tier, lo, hi) = window(w).bucket_range(as_of).unwrap();
        let bucket = tier.bucket(event_ms);
        lo < bucket && bucket <= hi
    }

    #[test]
    fn tiles_cover_a_range_exactly_once_and_stay_few() {
        for tier in Tier::ALL {
            let longest = match tier {
                Tier::Minute => 1440,
                Tier::Hour => 720,
            };
            let mut most = 0;
            for lo in (-3 * longest..3 * longest).step_by(7) {
                for width in [1, 5, 59, 60, 61, 168, 719, longest] {
                    let tiles = tier.tiles(lo, lo + width);
                    let mut covered: Vec<i64> = tiles
                        .iter()
                        .flat_map(|t| t.first_behind() + 1..=t.first_behind() + t.span)
                        .collect();
                    covered.sort_unstable();
                    assert_eq!(
                        covered,
                        (lo + 1..=lo + width).collect::<Vec<_>>(),
                        "{tier:?} ({lo}, +{width}]"
                    );
                    most = most.max(tiles.len());
                }
            }
            let bound = match tier {
                Tier::Minute => 18,
                Tier::Hour => 20,
            };
            assert!(most <= bound, "{tier:?}: {most} tiles");
        }
        assert!(Tier::Minute.tiles(5, 5).is_empty());
        assert_eq!(Tile::containing(10, 20), Tile { span: 10, index: 2 });
        assert_eq!(Tile::containing(10, 21), Tile { span: 10, index: 3 });
        assert_eq!(Tile::containing(10, -5), Tile { span: 10, index: 0 });
    }

    #[test]
    fn on_a_boundary_the_window_is_exactly_open_closed() {
        // (as_of - 24h, as_of]: the event exactly 24h before is out, the one at as_of is in.
        assert!(!inside("24h", T0 - DAY_MS, T0));
        assert!(inside("24h", T0 - DAY_MS + 1, T0));
        assert!(inside("24h", T0, T0));
        assert!(!inside("24h", T0 + 1, T0));
        assert!(!inside("7d", T0 - 7 * DAY_MS, T0));
        assert!(inside("7d", T0 - 7 * DAY_MS + 1, T0));
        assert_eq!(window("24h").time_range(T0), Some((T0 - DAY_MS, T0)));
    }

    #[test]
    fn off_a_boundary_edges_move_by_less_than_one_bucket() {
        let as_of = T0 + 30_000; // half a minute past
        assert_eq!(
            window("1h").time_range(as_of),
            Some((T0 + 60_000 - HOUR_MS, T0 + 60_000))
        );
        // The older edge is exact to within the bucket width (one minute up to 24h).
        assert!(!inside("1h", as_of - HOUR_MS, as_of));
        assert!(inside("1h", as_of - HOUR_MS + 30_001, as_of));
    }
}
