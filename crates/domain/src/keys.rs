//! Names that end up inside Redis keys. Both are restricted to a small alphabet so that no
//! caller-supplied text can address another key family (`*`, `raw_`, `:`) or grow without bound.

use std::fmt;

const MAX_KEY_LEN: usize = 128;
const MAX_FEATURE_NAME_LEN: usize = 64;

/// True when `id` can be a natural id of a record and an entity key: 1 to 128 characters of
/// `[A-Za-z0-9_.-]`. The same rule guards lookups, so every stored entity can be looked up.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_KEY_LEN && id.bytes().all(|b| ID_BYTES[usize::from(b)])
}

/// The bytes [`is_valid_id`] allows, as a table: a batch lookup checks a hundred keys.
const ID_BYTES: [bool; 256] = {
    let mut allowed = [false; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        allowed[b] = byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b'-');
        b += 1;
    }
    allowed
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} must be {rule}")]
pub struct InvalidName {
    pub what: &'static str,
    pub rule: &'static str,
}

/// The key of an entity in a lookup (`restaurant` id, `customer_id`, …).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntityKey(String);

impl EntityKey {
    pub fn parse(key: &str) -> Result<Self, InvalidName> {
        if is_valid_id(key) {
            Ok(Self(key.to_owned()))
        } else {
            Err(InvalidName {
                what: "key",
                rule: "1 to 128 characters of A-Z, a-z, 0-9, '_', '.', '-'",
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EntityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name of a feature (view) such as `restaurant`: `[a-z][a-z0-9_]*`, at most 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FeatureName(String);

impl FeatureName {
    pub fn parse(name: &str) -> Result<Self, InvalidName> {
        let mut bytes = name.bytes();
        let valid = name.len() <= MAX_FEATURE_NAME_LEN
            && bytes.next().is_some_and(|b| b.is_ascii_lowercase())
            && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(InvalidName {
                what: "feature name",
                rule: "1 to 64 characters of a-z, 0-9, '_', starting with a letter",
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FeatureName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_escape_their_key_family() {
        for bad in [
            "",
            "*",
            "a*",
            "a:b",
            "raw_order:x",
            "a b",
            "é",
            &"x".repeat(129),
        ] {
            assert!(EntityKey::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(EntityKey::parse("d19ff6fca6288939bff073ad0a119d25").is_ok());
        assert!(EntityKey::parse("80532101763").is_ok());
    }

    #[test]
    fn exactly_letters_digits_underscore_dot_and_dash_are_allowed() {
        for c in (0..=255u8).map(char::from) {
            let allowed = c.is_ascii_alphanumeric() || "_.-".contains(c);
            assert_eq!(is_valid_id(&format!("a{c}")), allowed, "{c:?}");
        }
    }

    #[test]
    fn feature_names_are_lowercase_identifiers() {
        for bad in [
            "",
            "Restaurant",
            "1x",
            "raw_order:",
            "a-b",
            "*",
            &"a".repeat(65),
        ] {
            assert!(FeatureName::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(FeatureName::parse("restaurant").is_ok());
        assert!(FeatureName::parse("simple_feature").is_ok());
    }
}
