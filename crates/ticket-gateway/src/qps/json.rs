//! A JSON reader as lenient as the .NET (Newtonsoft) reader behind a real Qlik Sense proxy.
//!
//! Authentication modules in Java, C# and Dart send documents a strict parser refuses:
//! single-quoted strings, trailing commas, unquoted property names, comments. The real
//! proxy accepts them, so this reader does too. It keeps object members in document order
//! (ticket attributes are ordered) and limits nesting depth, so a hostile document can
//! neither overflow the stack nor make the reader do more than linear work.
//!
//! `serde_json` is strict by design and `json5` neither limits depth nor keeps order, which
//! is why this one small reader exists.

// Public for the fuzz targets, property tests and benchmarks (see `crate::fuzzing`).
#![cfg_attr(not(feature = "fuzzing"), allow(unreachable_pub))]

use std::borrow::Cow;
use std::fmt;

#[cfg(any(test, feature = "fuzzing"))]
use crate::text::escape::json_string;
use crate::text::scan;

/// Deepest nesting accepted. A ticket request needs three levels.
pub const MAX_DEPTH: usize = 32;

/// A parsed value, borrowing from the document: a ticket request is read once and
/// dropped, so only strings with escapes are copied. Numbers keep their source text, as
/// .NET converts them to strings verbatim when a string property receives one.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// `null` (or `undefined`).
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as written.
    Number(&'a str),
    /// A string, unescaped.
    String(Cow<'a, str>),
    /// An array.
    #[cfg(any(test, feature = "fuzzing"))]
    Array(Vec<Value<'a>>),
    /// An object, members in document order (duplicates kept).
    #[cfg(any(test, feature = "fuzzing"))]
    Object(Vec<(Cow<'a, str>, Value<'a>)>),
}

#[cfg(any(test, feature = "fuzzing"))]
impl<'a> Value<'a> {
    /// The last member whose name matches `name` in any casing: Newtonsoft matches property
    /// names case-insensitively, and a later duplicate overwrites an earlier one.
    pub fn member(&self, name: &str) -> Option<&Value<'a>> {
        match self {
            Value::Object(members) => members
                .iter()
                .rev()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value as .NET would bind it to a `string` property: strings as they are,
    /// numbers and booleans as text, `null` as absent. Arrays and objects do not bind.
    pub fn as_text(&self) -> Result<Option<&str>, NotText> {
        match self {
            Value::Null => Ok(None),
            Value::Bool(b) => Ok(Some(if *b { "True" } else { "False" })),
            Value::Number(n) => Ok(Some(n)),
            Value::String(s) => Ok(Some(s)),
            Value::Array(_) | Value::Object(_) => Err(NotText),
        }
    }

    /// Writes the value back as strict JSON (used by property tests: whatever is read
    /// survives a write/read round trip).
    pub fn to_json(&self) -> String {
        let mut out = Vec::new();
        self.write(&mut out);
        // Only UTF-8 text and ASCII punctuation are ever written.
        String::from_utf8(out).unwrap_or_default()
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Value::Null => out.extend_from_slice(b"null"),
            Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Value::Number(n) => out.extend_from_slice(n.as_bytes()),
            Value::String(s) => json_string(out, s),
            Value::Array(items) => {
                out.push(b'[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    v.write(out);
                }
                out.push(b']');
            }
            Value::Object(members) => {
                out.push(b'{');
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    json_string(out, k);
                    out.push(b':');
                    v.write(out);
                }
                out.push(b'}');
            }
        }
    }
}

/// An array or object where a string was expected.
#[cfg(any(test, feature = "fuzzing"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotText;

/// Why a document was refused, with the byte offset where reading stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// What was wrong.
    pub reason: &'static str,
    /// Byte offset into the document.
    pub offset: usize,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at offset {}", self.reason, self.offset)
    }
}

#[cfg(any(test, feature = "fuzzing"))]
/// Reads one JSON value from `input`, which may start with a UTF-8 byte-order mark.
pub fn parse(input: &[u8]) -> Result<Value<'_>, JsonError> {
    let mut r = Reader::open(input)?;
    let v = r.value(0)?;
    r.close()?;
    Ok(v)
}

/// A value as .NET binds it to a `string` property (see [`Value::as_text`]), read by
/// [`Reader::text`] without building a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Text<'a> {
    /// `null` (or `undefined`): the property is left unset.
    Null,
    /// A string as it is; a number or a boolean as text.
    Text(Cow<'a, str>),
    /// An array or an object, which does not bind.
    NotText,
}

/// The reader: a cursor over a UTF-8 document. [`parse`] builds a [`Value`] tree with it;
/// the request bindings in [`super::wire`] walk a document with it in one pass, keeping
/// only the members they bind. Both go through the same grammar below ([`Reader::object`],
/// [`Reader::array`], [`Reader::scalar`]), so they accept and refuse exactly the same
/// documents, with the same reasons at the same offsets.
pub(crate) struct Reader<'a> {
    s: &'a [u8],
    text: &'a str,
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the first value of `input` (after a byte-order mark and whitespace).
    pub(crate) fn open(input: &'a [u8]) -> Result<Reader<'a>, JsonError> {
        let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
        let text = std::str::from_utf8(input).map_err(|e| JsonError {
            reason: "body is not UTF-8",
            offset: e.valid_up_to(),
        })?;
        let mut r = Reader {
            s: text.as_bytes(),
            text,
            pos: 0,
        };
        r.skip_space()?;
        if r.pos == r.s.len() {
            return Err(r.err("empty document"));
        }
        Ok(r)
    }

    /// Checks that nothing but whitespace follows the value read.
    pub(crate) fn close(mut self) -> Result<(), JsonError> {
        self.skip_space()?;
        if self.pos != self.s.len() {
            return Err(self.err("unexpected text after the document"));
        }
        Ok(())
    }

    fn err(&self, reason: &'static str) -> JsonError {
        JsonError {
            reason,
            offset: self.pos,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn skip_space(&mut self) -> Result<(), JsonError> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\n' | b'\r') => self.pos += 1,
                Some(b'/') => self.comment()?,
                _ => return Ok(()),
            }
        }
    }

    /// A `//` or `/* */` comment, which the .NET reader skips like whitespace.
    #[cold]
    fn comment(&mut self) -> Result<(), JsonError> {
        match self.s.get(self.pos + 1) {
            Some(b'/') => {
                let rest = &self.s[self.pos..];
                self.pos += rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
                Ok(())
            }
            Some(b'*') => {
                let rest = &self.text[self.pos + 2..];
                let end = rest
                    .find("*/")
                    .ok_or_else(|| self.err("unclosed comment"))?;
                self.pos += 2 + end + 2;
                Ok(())
            }
            _ => Err(self.err("unexpected '/'")),
        }
    }

    /// The first byte of a value at `depth`, which must not be too deep.
    fn enter(&self, depth: usize) -> Result<Option<u8>, JsonError> {
        if depth >= MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        Ok(self.peek())
    }

    #[cfg(any(test, feature = "fuzzing"))]
    fn value(&mut self, depth: usize) -> Result<Value<'a>, JsonError> {
        match self.enter(depth)? {
            Some(b'{') => {
                let mut members = Vec::new();
                self.object(depth, |r, key, depth| {
                    members.push((key, r.value(depth)?));
                    Ok(())
                })?;
                Ok(Value::Object(members))
            }
            Some(b'[') => {
                let mut items = Vec::new();
                self.array(depth, |r, depth| {
                    items.push(r.value(depth)?);
                    Ok(())
                })?;
                Ok(Value::Array(items))
            }
            _ => self.scalar(),
        }
    }

    /// A value at `depth` read as [`Value::as_text`] would bind it; an array or object is
    /// checked and skipped.
    pub(crate) fn text(&mut self, depth: usize) -> Result<Text<'a>, JsonError> {
        Ok(match self.enter(depth)? {
            Some(b'{' | b'[') => {
                self.skip(depth)?;
                Text::NotText
            }
            _ => match self.scalar()? {
                Value::Null => Text::Null,
                Value::Bool(b) => Text::Text(Cow::Borrowed(if b { "True" } else { "False" })),
                Value::Number(n) => Text::Text(Cow::Borrowed(n)),
                Value::String(s) => Text::Text(s),
                // `scalar` reads neither.
                #[cfg(any(test, feature = "fuzzing"))]
                Value::Array(_) | Value::Object(_) => Text::NotText,
            },
        })
    }

    /// Checks and skips a value at `depth`, keeping nothing.
    pub(crate) fn skip(&mut self, depth: usize) -> Result<(), JsonError> {
        match self.enter(depth)? {
            Some(b'{') => self.object(depth, |r, _, depth| r.skip(depth)),
            Some(b'[') => self.array(depth, |r, depth| r.skip(depth)),
            _ => self.scalar().map(drop),
        }
    }

    /// Whether the next value starts with `b` (`{`, `[`), without reading it.
    pub(crate) fn at(&self, b: u8) -> bool {
        self.peek() == Some(b)
    }

    /// Reads a value at `depth` with `read`, after the check every value gets on entry:
    /// for walking an object or array in place with [`Reader::object`] or [`Reader::array`].
    pub(crate) fn entered<T>(
        &mut self,
        depth: usize,
        read: impl FnOnce(&mut Self, usize) -> Result<T, JsonError>,
    ) -> Result<T, JsonError> {
        self.enter(depth)?;
        read(self, depth)
    }

    /// A string, number or literal.
    fn scalar(&mut self) -> Result<Value<'a>, JsonError> {
        match self.peek() {
            Some(q @ (b'"' | b'\'')) => self.string(q).map(Value::String),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => match self.word() {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                "null" | "undefined" => Ok(Value::Null),
                _ => Err(self.err("unexpected character")),
            },
            None => Err(self.err("unexpected end of document")),
        }
    }

    /// Walks the object at `depth` (the reader is at its `{`): `member` is called with
    /// each property name and must read the value, which is at `depth + 1`.
    pub(crate) fn object(
        &mut self,
        depth: usize,
        mut member: impl FnMut(&mut Self, Cow<'a, str>, usize) -> Result<(), JsonError>,
    ) -> Result<(), JsonError> {
        self.pos += 1;
        loop {
            self.skip_space()?;
            let key = match self.peek() {
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(q @ (b'"' | b'\'')) => self.string(q)?,
                Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b'$' => {
                    Cow::Borrowed(self.word())
                }
                None => return Err(self.err("unclosed object")),
                Some(_) => return Err(self.err("expected a property name")),
            };
            self.skip_space()?;
            if self.peek() != Some(b':') {
                return Err(self.err("expected ':'"));
            }
            self.pos += 1;
            self.skip_space()?;
            member(self, key, depth + 1)?;
            self.skip_space()?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {}
                None => return Err(self.err("unclosed object")),
                Some(_) => return Err(self.err("expected ',' or '}'")),
            }
        }
    }

    /// Walks the array at `depth` (the reader is at its `[`): `item` is called for each
    /// item and must read it; items are at `depth + 1`.
    pub(crate) fn array(
        &mut self,
        depth: usize,
        mut item: impl FnMut(&mut Self, usize) -> Result<(), JsonError>,
    ) -> Result<(), JsonError> {
        self.pos += 1;
        loop {
            self.skip_space()?;
            match self.peek() {
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                None => return Err(self.err("unclosed array")),
                Some(_) => item(self, depth + 1)?,
            }
            self.skip_space()?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {}
                None => return Err(self.err("unclosed array")),
                Some(_) => return Err(self.err("expected ',' or ']'")),
            }
        }
    }

    /// An identifier-like word: a bare property name or a literal.
    fn word(&mut self) -> &'a str {
        let start = self.pos;
        while matches!(self.peek(), Some(b) if b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
        {
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    fn number(&mut self) -> Result<Value<'a>, JsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let digits = |r: &mut Self| {
            let from = r.pos;
            while matches!(r.peek(), Some(b'0'..=b'9')) {
                r.pos += 1;
            }
            r.pos > from
        };
        if !digits(self) {
            return Err(self.err("malformed number"));
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !digits(self) {
                return Err(self.err("malformed number"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !digits(self) {
                return Err(self.err("malformed number"));
            }
        }
        Ok(Value::Number(&self.text[start..self.pos]))
    }

    /// A string literal: borrowed from the document unless it holds an escape.
    fn string(&mut self, quote: u8) -> Result<Cow<'a, str>, JsonError> {
        self.pos += 1;
        let first = self.pos;
        let end =
            |r: &Self| scan::find2(&r.s[r.pos..], quote, b'\\').map_or(r.s.len(), |i| r.pos + i);
        self.pos = end(self);
        if self.peek() == Some(quote) {
            self.pos += 1;
            return Ok(Cow::Borrowed(&self.text[first..self.pos - 1]));
        }
        self.pos = first;
        let mut out = String::new();
        loop {
            let start = self.pos;
            self.pos = end(self);
            out.push_str(&self.text[start..self.pos]);
            match self.peek() {
                None => return Err(self.err("unclosed string")),
                Some(b'\\') => {
                    self.pos += 1;
                    let c = match self.peek() {
                        Some(b'"') => '"',
                        Some(b'\'') => '\'',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.pos += 1;
                            let c = self.unicode_escape()?;
                            out.push(c);
                            continue;
                        }
                        _ => return Err(self.err("invalid escape")),
                    };
                    self.pos += 1;
                    out.push(c);
                }
                Some(_) => {
                    self.pos += 1;
                    return Ok(Cow::Owned(out));
                }
            }
        }
    }

    /// The four hex digits after `\u` (and a low surrogate's escape after a high one).
    fn unicode_escape(&mut self) -> Result<char, JsonError> {
        let hi = self.hex4()?;
        if (0xD800..0xDC00).contains(&hi) {
            if self.s.get(self.pos..self.pos + 2) == Some(b"\\u") {
                self.pos += 2;
                let lo = self.hex4()?;
                if (0xDC00..0xE000).contains(&lo) {
                    let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                    return char::from_u32(c).ok_or_else(|| self.err("invalid escape"));
                }
            }
            return Ok('\u{FFFD}');
        }
        Ok(char::from_u32(hi).unwrap_or('\u{FFFD}'))
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let digits = self
            .text
            .get(self.pos..self.pos + 4)
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.err("invalid \\u escape"))?;
        self.pos += 4;
        u32::from_str_radix(digits, 16).map_err(|_| self.err("invalid \\u escape"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj<'v>(v: &'v Value<'v>) -> Vec<(&'v str, &'v Value<'v>)> {
        match v {
            Value::Object(m) => m.iter().map(|(k, v)| (k.as_ref(), v)).collect(),
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn reads_what_java_and_dart_samples_send() {
        let v = parse(b"{ 'UserId':'u','UserDirectory':'d','Attributes': [],}").unwrap();
        assert_eq!(v.member("userid"), Some(&Value::String("u".into())));
        assert_eq!(v.member("attributes"), Some(&Value::Array(vec![])));
    }

    #[test]
    fn keeps_member_order_and_duplicates() {
        let v = parse(br#"{"b":1,"a":2,"b":3}"#).unwrap();
        let keys: Vec<&str> = obj(&v).iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, ["b", "a", "b"]);
        assert_eq!(v.member("B"), Some(&Value::Number("3")));
    }

    #[test]
    fn accepts_comments_bare_names_bom_and_escapes() {
        let v =
            parse(b"\xEF\xBB\xBF/* c */{UserId: \"a\\u00e9\\ud83d\\ude00\\\"\", // x\n }").unwrap();
        assert_eq!(v.member("USERID"), Some(&Value::String("aé😀\"".into())));
    }

    #[test]
    fn refuses_broken_documents() {
        for bad in [
            &b""[..],
            b"{",
            b"{\"a\":}",
            b"{\"a\" 1}",
            b"[1 2]",
            b"{\"a\":1}x",
            b"'unterminated",
            b"{\"a\":\"\\x\"}",
            b"\xff",
            b"01a",
            b"/* open",
            b"-",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn limits_depth_without_recursing_forever() {
        let deep = "[".repeat(100_000);
        assert_eq!(
            parse(deep.as_bytes()).unwrap_err().reason,
            "nesting too deep"
        );
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1));
        assert!(parse(ok.as_bytes()).is_ok());
    }

    #[test]
    fn round_trips_through_strict_json() {
        let v = parse(b"{'a':[1,-2.5e3,true,null,'x\\ny'],b:{},}").unwrap();
        assert_eq!(parse(v.to_json().as_bytes()).unwrap(), v);
    }
}
