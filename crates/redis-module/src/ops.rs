//! A group's operations, `[[kind, …], …]` as encode.rs writes them, read into [`Op`]s as the
//! script's `cjson.decode` reads them. Read by hand rather than through serde_json, whose
//! per-element machinery cost more than the few shapes encode.rs writes need: this reader borrows
//! every string without an escape, finds a string's end eight bytes at a time (most of the
//! 1,250-odd bytes an order carries are 64-character entity keys), and turns short integers into
//! doubles without a float parser.

use std::borrow::Cow;

/// A string of the operations' JSON.
pub type Text<'a> = Cow<'a, str>;

/// One operation, `[kind, …]`: the script's `op`, whose `op[n]` is the array's element n - 1.
/// Strings and numbers are where encode.rs puts them; elements after those, and every element of
/// a kind the script has no branch for, are skipped, as the script skips them.
pub enum Op<'a> {
    Touch {
        time: f64,
    },
    Last {
        feature: Text<'a>,
        value: Text<'a>,
        time: f64,
    },
    Tiles(Tiles<'a>),
    Lifetime {
        measure: Text<'a>,
        combine: Text<'a>,
        value: f64,
    },
    Distinct {
        measure: Text<'a>,
        member: Text<'a>,
        time: f64,
        retention: f64,
    },
    Frequency {
        measure: Text<'a>,
        value: Text<'a>,
    },
    Drain {
        view: Text<'a>,
        key: Text<'a>,
    },
    /// The entity keeps no version (the script's `keeps_version`).
    Unversioned,
    /// A kind the script has no branch for: it skips it, and so does the port.
    Other,
}

pub struct Tiles<'a> {
    /// The tier's tag (`m`, `h`).
    pub tier: Text<'a>,
    pub bucket: f64,
    pub retention: f64,
    pub prune_every: f64,
    /// The tile holding the bucket in every span, finest first.
    pub fields: Vec<Text<'a>>,
    pub measures: Vec<TileMeasure<'a>>,
}

/// `[id, combine, value]` of a tile's measure.
pub struct TileMeasure<'a> {
    pub id: Text<'a>,
    /// `add`, `min` or `max`.
    pub combine: Text<'a>,
    pub value: f64,
}

/// `cjson.decode` of a group's operations; Err names what is malformed and where.
pub fn decode(json: &[u8]) -> Result<Vec<Op<'_>>, String> {
    let mut reader = Reader { json, at: 0 };
    let ops = reader
        .list(|reader| reader.op())
        .and_then(|ops| match reader.peek() {
            None => Ok(ops),
            Some(_) => Err(reader.error("trailing characters")),
        });
    ops.map_err(|error| format!("ERR malformed operations: {error}"))
}

/// Nested arrays and objects deeper than this are refused rather than read (on Redis' stack),
/// as serde_json refuses them.
const MAX_DEPTH: usize = 128;

/// A cursor over the JSON.
struct Reader<'a> {
    json: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// The next byte that is not JSON whitespace, left unread; None at the end.
    fn peek(&mut self) -> Option<u8> {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.json.get(self.at) {
            self.at += 1;
        }
        self.json.get(self.at).copied()
    }

    fn error(&self, what: &str) -> String {
        format!("{what} at byte {}", self.at)
    }

    /// Reads `byte` (after whitespace).
    fn expect(&mut self, byte: u8, what: &str) -> Result<(), String> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    /// Reads `[element, …]`, each element with `element`.
    fn list<T>(
        &mut self,
        mut element: impl FnMut(&mut Self) -> Result<T, String>,
    ) -> Result<Vec<T>, String> {
        let mut elements = Vec::new();
        self.expect(b'[', "expected an array")?;
        while self.more(elements.is_empty())? {
            elements.push(element(self)?);
        }
        Ok(elements)
    }

    /// Inside an array: true when another element follows (its comma read), false at the `]`
    /// (read). `first`: no element was read yet.
    fn more(&mut self, first: bool) -> Result<bool, String> {
        match self.peek() {
            Some(b']') => {
                self.at += 1;
                Ok(false)
            }
            _ if first => Ok(true),
            Some(b',') => {
                self.at += 1;
                Ok(true)
            }
            _ => Err(self.error("expected `,` or `]`")),
        }
    }

    /// One operation.
    fn op(&mut self) -> Result<Op<'a>, String> {
        self.expect(b'[', "expected an operation [kind, …]")?;
        // How many of its elements were read.
        let read = &mut 0;
        self.next(read)?;
        let kind = self.value()?;
        let decoded = match kind.as_text() {
            Some("touch") => Op::Touch {
                time: self.number_at(read)?,
            },
            Some("last") => Op::Last {
                feature: self.text_at(read)?,
                value: self.text_at(read)?,
                time: self.number_at(read)?,
            },
            Some("tiles") => Op::Tiles(Tiles {
                tier: self.text_at(read)?,
                bucket: self.number_at(read)?,
                retention: self.number_at(read)?,
                prune_every: self.number_at(read)?,
                fields: {
                    self.next(read)?;
                    self.list(|reader| reader.value()?.text(reader))?
                },
                measures: {
                    self.next(read)?;
                    self.list(Self::measure)?
                },
            }),
            Some("lifetime") => Op::Lifetime {
                measure: self.text_at(read)?,
                combine: self.text_at(read)?,
                value: self.number_at(read)?,
            },
            Some("distinct") => Op::Distinct {
                measure: self.text_at(read)?,
                member: self.text_at(read)?,
                time: self.number_at(read)?,
                retention: self.number_at(read)?,
            },
            Some("frequency") => Op::Frequency {
                measure: self.text_at(read)?,
                value: self.text_at(read)?,
            },
            Some("drain") => Op::Drain {
                view: self.text_at(read)?,
                key: self.text_at(read)?,
            },
            Some("unversioned") => Op::Unversioned,
            _ => Op::Other,
        };
        while self.more(false)? {
            self.skip(0)?;
        }
        Ok(decoded)
    }

    /// Moves to an operation's next element, `op[*read + 1]`: Err when it has no more.
    fn next(&mut self, read: &mut usize) -> Result<(), String> {
        if !self.more(*read == 0)? {
            return Err(self.error(&format!("the operation has no element {}", *read + 1)));
        }
        *read += 1;
        Ok(())
    }

    /// An operation's next element, a string.
    fn text_at(&mut self, read: &mut usize) -> Result<Text<'a>, String> {
        self.next(read)?;
        self.value()?.text(self)
    }

    /// An operation's next element, a number.
    fn number_at(&mut self, read: &mut usize) -> Result<f64, String> {
        self.next(read)?;
        self.value()?.number(self)
    }

    /// `[id, combine, value]`, exactly.
    fn measure(&mut self) -> Result<TileMeasure<'a>, String> {
        self.expect(b'[', "expected a measure [id, combine, value]")?;
        let id = self.value()?.text(self)?;
        self.expect(b',', "expected a measure [id, combine, value]")?;
        let combine = self.value()?.text(self)?;
        self.expect(b',', "expected a measure [id, combine, value]")?;
        let value = self.value()?.number(self)?;
        self.expect(b']', "expected a measure [id, combine, value]")?;
        Ok(TileMeasure { id, combine, value })
    }

    /// Any value: a string or a number as it is, anything else read past.
    fn value(&mut self) -> Result<Value<'a>, String> {
        match self.peek() {
            Some(b'"') => self.string().map(Value::Text),
            Some(b'-' | b'0'..=b'9') => self.number().map(Value::Number),
            _ => self.skip(0).map(|()| Value::Other),
        }
    }

    /// Reads past an array, an object, `true`, `false` or `null` (strings and numbers too).
    fn skip(&mut self, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deep"));
        }
        match self.peek() {
            Some(b'"') => self.string().map(drop),
            Some(b'-' | b'0'..=b'9') => self.number().map(drop),
            Some(b'[') => {
                self.at += 1;
                let mut first = true;
                while self.more(first)? {
                    first = false;
                    self.skip(depth + 1)?;
                }
                Ok(())
            }
            Some(b'{') => {
                self.at += 1;
                if self.peek() == Some(b'}') {
                    self.at += 1;
                    return Ok(());
                }
                loop {
                    self.string()?;
                    self.expect(b':', "expected `:`")?;
                    self.skip(depth + 1)?;
                    match self.peek() {
                        Some(b',') => self.at += 1,
                        Some(b'}') => {
                            self.at += 1;
                            return Ok(());
                        }
                        _ => return Err(self.error("expected `,` or `}`")),
                    }
                }
            }
            _ => {
                let rest = &self.json[self.at..];
                let word = [&b"true"[..], b"false", b"null"]
                    .into_iter()
                    .find(|word| rest.starts_with(word))
                    .ok_or_else(|| self.error("expected a value"))?;
                self.at += word.len();
                Ok(())
            }
        }
    }

    /// A string, borrowed from the JSON unless it has escapes.
    fn string(&mut self) -> Result<Text<'a>, String> {
        self.expect(b'"', "expected a string")?;
        let start = self.at;
        let end = plain_end(self.json, start);
        match self.json.get(end) {
            Some(b'"') => {
                self.at = end + 1;
                std::str::from_utf8(&self.json[start..end])
                    .map(Cow::Borrowed)
                    .map_err(|_| self.error("a string is not UTF-8"))
            }
            Some(b'\\') => {
                self.at = end;
                let mut text = self.json[start..end].to_vec();
                self.escaped(&mut text)?;
                String::from_utf8(text)
                    .map(Cow::Owned)
                    .map_err(|_| self.error("a string is not UTF-8"))
            }
            Some(_) => {
                self.at = end;
                Err(self.error("a control character in a string"))
            }
            None => Err(self.error("a string without its end")),
        }
    }

    /// The rest of a string from its first escape, appended to `text`; its closing quote read.
    fn escaped(&mut self, text: &mut Vec<u8>) -> Result<(), String> {
        loop {
            let Some(&byte) = self.json.get(self.at) else {
                return Err(self.error("a string without its end"));
            };
            self.at += 1;
            match byte {
                b'"' => return Ok(()),
                b'\\' => {
                    let Some(&escape) = self.json.get(self.at) else {
                        return Err(self.error("a string without its end"));
                    };
                    self.at += 1;
                    let unescaped = match escape {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 0x08,
                        b'f' => 0x0c,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'u' => {
                            let c = self.code_point()?;
                            text.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                            continue;
                        }
                        _ => return Err(self.error("an unknown escape")),
                    };
                    text.push(unescaped);
                }
                byte if byte < 0x20 => return Err(self.error("a control character in a string")),
                byte => text.push(byte),
            }
        }
    }

    /// The character of a `\u` escape (its `\u` read), joining a surrogate pair.
    fn code_point(&mut self) -> Result<char, String> {
        let high = self.hex4()?;
        let code = if (0xd800..0xdc00).contains(&high) {
            if !self.json[self.at..].starts_with(b"\\u") {
                return Err(self.error("a lone surrogate"));
            }
            self.at += 2;
            let low = self.hex4()?;
            if !(0xdc00..0xe000).contains(&low) {
                return Err(self.error("a lone surrogate"));
            }
            0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00)
        } else {
            high
        };
        char::from_u32(code).ok_or_else(|| self.error("a lone surrogate"))
    }

    /// Four hexadecimal digits.
    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self.json.get(self.at..self.at + 4);
        let code = digits
            .and_then(|digits| std::str::from_utf8(digits).ok())
            .filter(|digits| digits.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|digits| u32::from_str_radix(digits, 16).ok())
            .ok_or_else(|| self.error("a bad \\u escape"))?;
        self.at += 4;
        Ok(code)
    }

    /// A JSON number as a double, as `strtod` (cjson) reads it: correctly rounded.
    fn number(&mut self) -> Result<f64, String> {
        let start = self.at;
        let json = self.json;
        let digits_from = |at: usize| {
            at + json[at..]
                .iter()
                .take_while(|byte| byte.is_ascii_digit())
                .count()
        };
        let negative = json.get(start) == Some(&b'-');
        let int_start = start + usize::from(negative);
        let int_end = digits_from(int_start);
        let int_digits = &json[int_start..int_end];
        if int_digits.is_empty() || (int_digits.len() > 1 && int_digits[0] == b'0') {
            return Err(self.error("a malformed number"));
        }
        let mut end = int_end;
        let mut whole = true;
        if json.get(end) == Some(&b'.') {
            let fraction_end = digits_from(end + 1);
            if fraction_end == end + 1 {
                return Err(self.error("a malformed number"));
            }
            (end, whole) = (fraction_end, false);
        }
        if let Some(b'e' | b'E') = json.get(end) {
            let sign = usize::from(matches!(json.get(end + 1), Some(b'+' | b'-')));
            let exponent_end = digits_from(end + 1 + sign);
            if exponent_end == end + 1 + sign {
                return Err(self.error("a malformed number"));
            }
            (end, whole) = (exponent_end, false);
        }
        self.at = end;
        // Integers of up to 15 digits are exact doubles: no need for the float parser.
        if whole && int_digits.len() <= 15 {
            let magnitude = int_digits
                .iter()
                .fold(0u64, |n, &digit| n * 10 + u64::from(digit - b'0'));
            let magnitude = magnitude as f64;
            return Ok(if negative { -magnitude } else { magnitude });
        }
        let text =
            std::str::from_utf8(&json[start..end]).map_err(|_| self.error("a malformed number"))?;
        text.parse().map_err(|_| self.error("a malformed number"))
    }
}

/// Where a string's plain run from `start` ends: at its first `"`, `\` or control character, or
/// at the end of the JSON. Eight bytes at a time: most of the operations' bytes are 64-character
/// entity keys.
fn plain_end(json: &[u8], start: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // The high bit of each byte of `word` below `n` (n <= 0x80), exact up to the first such
    // byte: only a byte below `n` borrows from the one above it.
    let below = |word: u64, n: u8| word.wrapping_sub(ONES * u64::from(n)) & !word & HIGHS;
    let mut at = start;
    while let Some(chunk) = json.get(at..at + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let quote = below(word ^ (ONES * u64::from(b'"')), 1);
        let backslash = below(word ^ (ONES * u64::from(b'\\')), 1);
        let hits = quote | backslash | below(word, 0x20);
        if hits != 0 {
            return at + (hits.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    let tail = json[at..]
        .iter()
        .position(|&byte| byte == b'"' || byte == b'\\' || byte < 0x20);
    tail.map_or(json.len(), |n| at + n)
}

/// A value where the operation has a string or a number.
enum Value<'a> {
    Text(Text<'a>),
    Number(f64),
    Other,
}

impl<'a> Value<'a> {
    /// The kind of an operation: a string, or None for anything else.
    fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(text) => Some(text),
            _ => None,
        }
    }

    fn text(self, reader: &Reader) -> Result<Text<'a>, String> {
        match self {
            Value::Text(text) => Ok(text),
            _ => Err(reader.error("expected a string")),
        }
    }

    fn number(self, reader: &Reader) -> Result<f64, String> {
        match self {
            Value::Number(number) => Ok(number),
            _ => Err(reader.error("expected a number")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_decode_as_encode_rs_writes_them() {
        let json = br#"[["touch",1546300800000],["last","status","paid",1546300800000],
            ["tiles","m",25771680,1500,60,["25771680","5154336x5"],[["m1","add",1]]],
            ["lifetime","m2","max",1250],["distinct","m3","u1",1546300800000,86400000],
            ["frequency","m4","card"],["drain","order","o1"],["later"],[5,"x"],["unversioned"]]"#;
        let ops = decode(json).expect("decodes");
        assert_eq!(ops.len(), 10);
        assert!(matches!(ops[9], Op::Unversioned));
        assert!(matches!(ops[0], Op::Touch { time } if time == 1_546_300_800_000.0));
        assert!(matches!(&ops[2], Op::Tiles(tiles)
            if tiles.fields == ["25771680", "5154336x5"] && tiles.measures[0].combine == "add"
                && tiles.bucket == 25_771_680.0 && tiles.prune_every == 60.0));
        assert!(matches!(&ops[4], Op::Distinct { member, retention, .. }
            if member == "u1" && *retention == 86_400_000.0));
        assert!(matches!(ops[7], Op::Other));
        assert!(matches!(ops[8], Op::Other));
    }

    #[test]
    fn strings_with_escapes_decode_as_well_as_borrowed_ones() {
        let json =
            br#"[["last","st\"atus","caf\u00e9 \ud83d\ude00\n",1],["frequency","m4","card"]]"#;
        let ops = decode(json).expect("decodes");
        assert!(matches!(&ops[0], Op::Last { feature, value, .. }
            if feature == "st\"atus" && value == "café 😀\n" && matches!(value, Cow::Owned(_))));
        assert!(matches!(&ops[1], Op::Frequency { value, .. }
            if value == "card" && matches!(value, Cow::Borrowed(_))));
        assert!(decode(br#"[["last",5,"x",1]]"#).is_err());
        assert!(decode(br#"[["last","a","\ud83d",1]]"#).is_err());
    }

    #[test]
    fn a_string_ends_at_its_first_quote_backslash_or_control_character() {
        let plain = "a0é-ÿ~ \u{7f}".repeat(5);
        for stop in ["\"", "\\", "\n", "\u{1}", "\u{1f}"] {
            for at in 0..plain.len() {
                if !plain.is_char_boundary(at) {
                    continue;
                }
                let json = format!("{}{stop}{}", &plain[..at], &plain[at..]);
                assert_eq!(plain_end(json.as_bytes(), 0), at, "{stop:?} at {at}");
                assert_eq!(plain_end(json.as_bytes(), at), at);
            }
        }
        assert_eq!(plain_end(plain.as_bytes(), 3), plain.len());
    }

    #[test]
    fn numbers_read_as_strtod_reads_them() {
        let time = |json: &str| match &decode(json.as_bytes()).expect("decodes")[0] {
            Op::Touch { time } => *time,
            _ => panic!("not a touch"),
        };
        assert_eq!(time(r#"[["touch",-0]]"#).to_bits(), (-0.0f64).to_bits());
        assert_eq!(time(r#"[["touch",66.5]]"#), 66.5);
        assert_eq!(time(r#"[["touch",-1.5e3]]"#), -1500.0);
        assert_eq!(time(r#"[["touch",0.1]]"#), 0.1);
        // Past 15 digits the float parser rounds, as strtod does.
        assert_eq!(
            time(r#"[["touch",9007199254740993]]"#),
            9_007_199_254_740_992.0
        );
        assert_eq!(
            time(r#"[["touch",123456789012345678901234]]"#),
            1.2345678901234568e23
        );
        for bad in ["01", "1.", ".5", "-", "1e", "+1", "1.e3"] {
            assert!(
                decode(format!(r#"[["touch",{bad}]]"#).as_bytes()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn elements_of_any_kind_are_skipped_and_malformed_json_refused() {
        let ops =
            decode(br#" [ ["drain" , "v" , "k" , {"a": [1, true, null], "b": {}}, false, [] ] ] "#)
                .expect("decodes");
        assert!(matches!(&ops[0], Op::Drain { view, key } if view == "v" && key == "k"));
        assert!(decode(br#"[[{"kind": "touch"}, 1]]"#).is_ok());
        for bad in [
            "",
            "[",
            "[[]]",
            r#"[["touch"]]"#,
            r#"[["touch","5"]]"#,
            r#"[["touch",1],]"#,
            r#"[["touch",1]] x"#,
            r#"[["touch" 1]]"#,
            r#"[["tiles","m",1,2,3,["a"],[["m1","add"]]]]"#,
            r#"[["tiles","m",1,2,3,["a"],[["m1","add",1,2]]]]"#,
            r#"[["later",tru]]"#,
            r#"[["later","a
b"]]"#,
        ] {
            let error = decode(bad.as_bytes()).err();
            assert!(
                error
                    .as_deref()
                    .is_some_and(|e| e.starts_with("ERR malformed operations: ")),
                "{bad:?}: {error:?}"
            );
        }
        let deep = format!(r#"[["later",{}{}]]"#, "[".repeat(200), "]".repeat(200));
        assert!(decode(deep.as_bytes()).is_err());
    }
}
