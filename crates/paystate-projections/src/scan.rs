//! A strict reader for the compact JSON that serde_json writes, used to decode the two
//! payloads a rebuild meets a million times (receipts and payment facts) without serde's
//! per-token machinery.
//!
//! It reads only a subset of JSON: UTF-8 text (checked once, as a whole), no whitespace, no
//! escape in a string, integers without fraction or exponent, nesting at most [`MAX_DEPTH`]
//! deep. Anything else makes a read give up (`None`), never fail: the caller then decodes the
//! payload with serde_json, which accepts or rejects it as it always has. Each read accepts
//! only what serde_json accepts, with the same value, so which payloads decode, and to what,
//! does not depend on which path read them.

/// The deepest nesting a skipped value may have before the reader gives up.
pub(crate) const MAX_DEPTH: usize = 16;

/// A position in a JSON text.
#[derive(Debug)]
pub(crate) struct Scanner<'a> {
    text: &'a str,
    at: usize,
}

/// A byte that ends the plain part of a string: its closing quote, an escape or a control
/// character (which JSON does not allow unescaped).
fn ends_plain(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

/// The length of the plain start of `bytes`, up to the first byte that [`ends_plain`].
///
/// Most strings are keys and short values, which end within two 8-byte words
/// ([`first_end_in`]). A longer one (a receipt's body is hundreds of bytes) is then passed
/// over 16 bytes at a time with a check without a branch per byte, which the compiler turns
/// into vector compares, and the block that holds its end is searched word by word again.
fn plain_len(bytes: &[u8]) -> usize {
    const SHORT: usize = 16;
    const BLOCK: usize = 16;
    let mut len = 0;
    while len < SHORT {
        match words_to_end(bytes, len) {
            Ok(end) => return end,
            Err(next) => len = next,
        }
    }
    while let Some(block) = bytes.get(len..len + BLOCK) {
        let ends = block.iter().fold(false, |found, &byte| {
            found | (byte < 0x20) | (byte == b'"') | (byte == b'\\')
        });
        if ends {
            break;
        }
        len += BLOCK;
    }
    loop {
        match words_to_end(bytes, len) {
            Ok(end) => return end,
            Err(next) => len = next,
        }
    }
}

/// Looks at the 8 bytes of `bytes` from `from`: `Ok` with the index of the first byte that
/// [`ends_plain`] if it is there (or of the end, when fewer than 8 bytes are left), else
/// `Err` with the index to look on from.
fn words_to_end(bytes: &[u8], from: usize) -> Result<usize, usize> {
    let Some(chunk) = bytes.get(from..from + 8) else {
        let tail = bytes.get(from..).unwrap_or_default();
        return Ok(from + first_end(tail));
    };
    let mut word = [0; 8];
    word.copy_from_slice(chunk);
    match first_end_in(u64::from_le_bytes(word)) {
        Some(at) => Ok(from + at),
        None => Err(from + 8),
    }
}

/// The index of the first byte that [`ends_plain`], one byte at a time (or the length).
fn first_end(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .position(|&byte| ends_plain(byte))
        .unwrap_or(bytes.len())
}

/// The index of the first of 8 bytes (little-endian in `word`) that [`ends_plain`].
///
/// Each test flags a byte by its top bit: `(x - 0x01..) & !x` for a zero byte of `x` (so a
/// byte equal to the one XORed in), `(w - 0x20..) & !w` for a byte below 0x20. A borrow can
/// flag bytes after a flagged one, never before, so the lowest flag is exact.
fn first_end_in(word: u64) -> Option<usize> {
    const ONES: u64 = u64::MAX / 255;
    const TOPS: u64 = ONES << 7;
    let zero_in = |x: u64| x.wrapping_sub(ONES) & !x;
    let quote = zero_in(word ^ (ONES * u64::from(b'"')));
    let backslash = zero_in(word ^ (ONES * u64::from(b'\\')));
    let control = word.wrapping_sub(ONES * 0x20) & !word;
    let found = (quote | backslash | control) & TOPS;
    (found != 0).then(|| found.trailing_zeros() as usize / 8)
}

impl<'a> Scanner<'a> {
    /// A scanner at the start of `text`; `None` if it is not UTF-8.
    pub fn new(text: &'a [u8]) -> Option<Scanner<'a>> {
        Some(Scanner {
            text: std::str::from_utf8(text).ok()?,
            at: 0,
        })
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    /// Takes the next byte.
    pub fn next_byte(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    /// Takes the next byte if it is `byte`.
    pub fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// Whether the whole text has been read.
    pub fn is_done(&self) -> bool {
        self.at == self.text.len()
    }

    /// A string without escapes.
    pub fn string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.at;
        let len = plain_len(self.text.as_bytes().get(start..)?);
        // What ended it must be the closing quote, not an escape or a control character.
        if self.text.as_bytes().get(start + len) != Some(&b'"') {
            return None;
        }
        self.at = start + len + 1;
        // Both ends are next to a quote, so on character boundaries.
        self.text.get(start..start + len)
    }

    /// An object key and the colon after it.
    fn key(&mut self) -> Option<&'a str> {
        let key = self.string()?;
        self.expect(b':')?;
        Some(key)
    }

    /// Takes `"{key}":` if it comes next: a key expected here is compared, not searched for
    /// its end, which is most of the cost of reading the short keys of an object.
    fn expected_key(&mut self, key: &str) -> bool {
        let len = key.len();
        let found = self.text.as_bytes().get(self.at..self.at + len + 3);
        let matches = found.is_some_and(|found| {
            found.first() == Some(&b'"')
                && found.get(1..=len) == Some(key.as_bytes())
                && found.get(len + 1..) == Some(b"\":")
        });
        if matches {
            self.at += len + 3;
        }
        matches
    }

    /// An unsigned integer of at most 19 digits (so it fits a `u64`), without sign,
    /// fraction or exponent; a leading zero only as the number zero.
    pub fn unsigned(&mut self) -> Option<u64> {
        let digits = self.digits()?;
        if digits.len() > 19 {
            return None;
        }
        Some(
            digits
                .iter()
                .fold(0u64, |value, &digit| value * 10 + u64::from(digit - b'0')),
        )
    }

    /// The digits of an integer: `0`, or a digit 1-9 and any digits. What follows is left to
    /// the caller, which accepts only a comma or a closing bracket there.
    fn digits(&mut self) -> Option<&'a [u8]> {
        let start = self.at;
        match self.next_byte()? {
            b'0' => {}
            b'1'..=b'9' => {
                while matches!(self.peek(), Some(b'0'..=b'9')) {
                    self.at += 1;
                }
            }
            _ => return None,
        }
        self.text.as_bytes().get(start..self.at)
    }

    /// `true` or `false`.
    pub fn boolean(&mut self) -> Option<bool> {
        if self.literal(b"true").is_some() {
            Some(true)
        } else {
            self.literal(b"false").map(|()| false)
        }
    }

    /// Takes `null` if it comes next.
    pub fn null(&mut self) -> Option<()> {
        self.literal(b"null")
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.text.as_bytes().get(self.at..end)? == word).then(|| self.at = end)
    }

    /// Skips one value of any type, checking it as serde_json checks a value it ignores.
    pub fn skip_value(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => self.skip_object(depth, &[]),
            b'[' => self.skip_array(depth),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' => {
                self.at += 1;
                self.digits().map(drop)
            }
            _ => self.digits().map(drop),
        }
    }

    /// As [`Scanner::skip_value`]; if the value is an object, `keys` are the keys this code
    /// writes in it, in order (see [`Scanner::object`]).
    pub fn skip_value_keyed(&mut self, depth: usize, keys: &[&str]) -> Option<()> {
        if self.peek()? == b'{' {
            self.skip_object(depth, keys)
        } else {
            self.skip_value(depth)
        }
    }

    fn skip_object(&mut self, depth: usize, keys: &[&str]) -> Option<()> {
        let depth = depth.checked_sub(1)?;
        self.object(keys, |scanner, _| scanner.skip_value(depth))
    }

    fn skip_array(&mut self, depth: usize) -> Option<()> {
        let depth = depth.checked_sub(1)?;
        self.expect(b'[')?;
        if self.expect(b']').is_some() {
            return Some(());
        }
        loop {
            self.skip_value(depth)?;
            match self.next_byte()? {
                b',' => {}
                b']' => return Some(()),
                _ => return None,
            }
        }
    }

    /// Reads an object's members with `member` (given each key, it reads the value) up to
    /// its closing brace.
    ///
    /// `keys` are the keys this code writes, in the order it writes them: the next one is
    /// compared first, and only a key that is not (an optional one left out, or another
    /// writer's order) is read in full. Which keys are accepted does not depend on them.
    pub fn object(
        &mut self,
        keys: &[&str],
        mut member: impl FnMut(&mut Self, &str) -> Option<()>,
    ) -> Option<()> {
        self.expect(b'{')?;
        if self.expect(b'}').is_some() {
            return Some(());
        }
        let mut next = 0;
        loop {
            let key = match keys.get(next) {
                Some(&key) if self.expected_key(key) => {
                    next += 1;
                    key
                }
                _ => {
                    let key = self.key()?;
                    next = keys
                        .iter()
                        .position(|&known| known == key)
                        .map_or(next, |at| at + 1);
                    key
                }
            };
            member(self, key)?;
            match self.next_byte()? {
                b',' => {}
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    /// As [`Scanner::object`], for an object that must be the whole text.
    pub fn document(
        &mut self,
        keys: &[&str],
        member: impl FnMut(&mut Self, &str) -> Option<()>,
    ) -> Option<()> {
        self.object(keys, member)?;
        self.is_done().then_some(())
    }
}

/// Marks which fields of a struct were read, to give up on a repeated one (serde_json
/// rejects it).
#[derive(Debug, Default)]
pub(crate) struct Seen(u32);

impl Seen {
    /// Marks field `index`; `None` if it was already marked.
    pub fn mark(&mut self, index: u32) -> Option<()> {
        let bit = 1u32.checked_shl(index)?;
        if self.0 & bit != 0 {
            return None;
        }
        self.0 |= bit;
        Some(())
    }

    /// Whether every field in `required` (a bit per field) was read.
    pub fn has_all(&self, required: u32) -> bool {
        self.0 & required == required
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(text: &[u8]) -> Scanner<'_> {
        Scanner::new(text).unwrap()
    }

    #[test]
    fn plain_len_stops_at_the_first_quote_escape_or_control_character() {
        let long = "a".repeat(40);
        for (text, len) in [
            (format!("{long}\"rest"), 40),
            (format!("{long}\\\"rest"), 40),
            (format!("{long}\nrest"), 40),
            ("abc".to_owned(), 3),
            (String::new(), 0),
            (format!("{}\"", "b".repeat(16)), 16),
            (format!("{}\u{1f}", "b".repeat(31)), 31),
            (format!("{}\\", "b".repeat(20)), 20),
            ("é\"".to_owned(), 2),
            (format!("{}\\\"{}\"", "b".repeat(100), "c".repeat(50)), 100),
            (format!("{}\u{0}{}\"", "b".repeat(70), "c".repeat(50)), 70),
            (format!("{}\"", "b".repeat(500)), 500),
            ("b".repeat(77), 77),
        ] {
            assert_eq!(plain_len(text.as_bytes()), len, "{text:?}");
        }
    }

    #[test]
    fn plain_len_agrees_with_a_byte_by_byte_search_at_every_length_and_position() {
        for len in 0..80 {
            let plain = vec![b'b'; len];
            assert_eq!(plain_len(&plain), len);
            for at in 0..len {
                for special in [b'"', b'\\', 0x00, 0x1f] {
                    let mut text = plain.clone();
                    text[at] = special;
                    // A second one later must not matter.
                    text.push(b'"');
                    assert_eq!(plain_len(&text), at, "{len} {at} {special}");
                    assert_eq!(first_end(&text), at);
                }
            }
        }
    }

    #[test]
    fn first_end_in_finds_the_first_ending_byte_of_a_word() {
        let at = |bytes: &[u8; 8]| first_end_in(u64::from_le_bytes(*bytes));
        assert_eq!(at(b"abcdefgh"), None);
        assert_eq!(at(b"\xff\x80 !~\x7fAZ"), None);
        assert_eq!(at(b"abc\"efgh"), Some(3));
        assert_eq!(at(b"\\bcdefgh"), Some(0));
        assert_eq!(at(b"abcdefg\x1f"), Some(7));
        assert_eq!(at(b"ab\x00\"\\fgh"), Some(2));
        // A byte below 0x20 borrows from the next one, which is then flagged too.
        assert_eq!(at(b"a\x01!\"efgh"), Some(1));
        for byte in 0..=255u8 {
            let mut word = *b"abcdefgh";
            word[5] = byte;
            assert_eq!(at(&word), ends_plain(byte).then_some(5), "{byte:#x}");
        }
    }

    #[test]
    fn strings_with_escapes_or_control_characters_are_declined() {
        for text in [
            r#""a\"b""#,
            r#""a\nb""#,
            "\"a\u{1}b\"",
            "\"unterminated",
            "unquoted",
        ] {
            assert_eq!(reader(text.as_bytes()).string(), None, "{text}");
        }
        assert_eq!(reader("\"zürich\"".as_bytes()).string(), Some("zürich"));
        assert!(Scanner::new(b"\"\xff\"").is_none());
    }

    #[test]
    fn unsigned_reads_plain_integers_only() {
        assert_eq!(reader(b"0").unsigned(), Some(0));
        assert_eq!(reader(b"13600,").unsigned(), Some(13600));
        assert_eq!(
            reader(b"9999999999999999999").unsigned(),
            Some(9_999_999_999_999_999_999)
        );
        for text in [&b"-1"[..], b"", b"x", b"99999999999999999999"] {
            assert_eq!(reader(text).unsigned(), None);
        }
        // A leading zero reads as the number zero; the caller then sees a digit, not a comma.
        let mut scanner = reader(b"01");
        assert_eq!(scanner.unsigned(), Some(0));
        assert_eq!(scanner.next_byte(), Some(b'1'));
    }

    #[test]
    fn skip_value_follows_nesting_and_gives_up_past_the_depth_limit() {
        let nested = |depth: usize| format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let text = nested(MAX_DEPTH);
        let mut scanner = reader(text.as_bytes());
        assert_eq!(scanner.skip_value(MAX_DEPTH), Some(()));
        assert!(scanner.is_done());
        let text = nested(MAX_DEPTH + 1);
        assert_eq!(reader(text.as_bytes()).skip_value(MAX_DEPTH), None);
        let text = br#"{"a":[true,false,null,-0,12,"x",{}],"b":{"c":[]},"d":{"e":1,"f":2}}"#;
        let mut scanner = reader(text);
        assert_eq!(scanner.skip_value(MAX_DEPTH), Some(()));
        assert!(scanner.is_done());
        for text in [
            &br#"{"a" :1}"#[..],
            br#"[1 ]"#,
            br#"[1.5]"#,
            br#"{"a":1,}"#,
            b"tru",
        ] {
            let mut scanner = reader(text);
            assert!(
                scanner.skip_value(MAX_DEPTH).is_none() || !scanner.is_done(),
                "{}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn objects_read_the_same_keys_whichever_are_expected() {
        let text = br#"{"a":1,"b":{"x":"y"},"c":[],"d":true}"#;
        for keys in [
            &["a", "b", "c", "d"][..],
            &["b", "c", "d"],
            &["d", "c", "b", "a"],
            &["a", "z", "c"],
            &["a\":1"],
            &[],
        ] {
            let mut read = Vec::new();
            let mut scanner = reader(text);
            let done = scanner.document(keys, |scanner, key| {
                read.push(key.to_owned());
                scanner.skip_value(MAX_DEPTH)
            });
            assert_eq!(done, Some(()), "{keys:?}");
            assert_eq!(read, ["a", "b", "c", "d"], "{keys:?}");
        }
        for text in [
            &br#"{"a":1}x"#[..],
            br#"{"a" :1}"#,
            br#"{"a":1,}"#,
            br#"{"a\u0062":1}"#,
        ] {
            let read =
                reader(text).document(&["a", "ab"], |scanner, _| scanner.skip_value(MAX_DEPTH));
            assert_eq!(read, None, "{}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn seen_refuses_a_field_twice() {
        let mut seen = Seen::default();
        assert_eq!(seen.mark(3), Some(()));
        assert_eq!(seen.mark(3), None);
        assert!(seen.has_all(0b1000));
        assert!(!seen.has_all(0b1001));
    }
}
