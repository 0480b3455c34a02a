use std::{fmt, str::FromStr};

/// One of the four iFood event streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    Order,
    Status,
    Restaurant,
    Consumer,
}

impl Source {
    pub const ALL: [Source; 4] = [
        Source::Order,
        Source::Status,
        Source::Restaurant,
        Source::Consumer,
    ];

    /// The name used in routes (`/v1/events/order`) and Redis keys (`raw_order:{id}`).
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Order => "order",
            Source::Status => "status",
            Source::Restaurant => "restaurant",
            Source::Consumer => "consumer",
        }
    }

    /// The field holding the natural id of a record of this source.
    pub fn id_field(self) -> &'static str {
        match self {
            Source::Order => "order_id",
            Source::Status => "status_id",
            Source::Restaurant => "id",
            Source::Consumer => "customer_id",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown source `{0}`; valid sources are order, status, restaurant, consumer")]
pub struct UnknownSource(pub String);

impl FromStr for Source {
    type Err = UnknownSource;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Source::ALL
            .into_iter()
            .find(|source| source.as_str() == s)
            .ok_or_else(|| UnknownSource(s.chars().take(64).collect()))
    }
}
