//! Small HTTP helpers shared by both dialects: response bodies, bounded body reads, query
//! parameters, cookies and percent-encoding.

use std::borrow::Cow;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Response, StatusCode};
use http_body::{Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use http_body_util::BodyExt;

/// Any error a body can fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The response body of every handler: a complete buffer (nearly every reply the gateway
/// writes itself), or a stream (a back end's reply passed through). An enum rather than a
/// boxed trait object, so the common case costs no allocation and no dynamic dispatch.
#[derive(Debug)]
pub struct Body(Kind);

#[derive(Debug)]
enum Kind {
    /// What is left to send: `None` once sent.
    Full(Option<Bytes>),
    Stream(BoxBody<Bytes, BoxError>),
}

impl Body {
    /// A body that streams `body` through.
    pub fn stream<B>(body: B) -> Body
    where
        B: http_body::Body<Data = Bytes, Error = BoxError> + Send + Sync + 'static,
    {
        Body(Kind::Stream(BoxBody::new(body)))
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().0 {
            Kind::Full(data) => Poll::Ready(
                data.take()
                    .filter(|d| !d.is_empty())
                    .map(|d| Ok(Frame::data(d))),
            ),
            Kind::Stream(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Kind::Full(data) => data.as_ref().map_or(true, Bytes::is_empty),
            Kind::Stream(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Kind::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Kind::Stream(body) => body.size_hint(),
        }
    }
}

/// `text/plain; charset=utf-8`
pub const TEXT: &str = "text/plain; charset=utf-8";
/// `application/json; charset=utf-8`
pub const JSON: &str = "application/json; charset=utf-8";
/// `text/html; charset=utf-8`
pub const HTML: &str = "text/html; charset=utf-8";

/// A complete body. Its exact size is known, so hyper sends it with `Content-Length`, and
/// with the connection's vectored writes turned off, headers and body leave in one write:
/// some clients parse only the first chunk they receive.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Body(Kind::Full(Some(bytes.into())))
}

/// An empty body.
pub fn empty() -> Body {
    full(Bytes::new())
}

/// A response with a status, a content type and a complete body.
pub fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut res = Response::new(full(body));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}

/// A `302 Found` to `location`, with an empty body.
pub fn found(location: &str) -> Response<Body> {
    let mut res = Response::new(empty());
    *res.status_mut() = StatusCode::FOUND;
    match HeaderValue::from_str(location) {
        Ok(v) => {
            res.headers_mut().insert(http::header::LOCATION, v);
        }
        Err(_) => {
            // Every location is built from configuration and percent-encoded parts; one
            // that is not a valid header value is a bug, not a client error.
            tracing::error!("refusing to send an invalid Location header");
            *res.status_mut() = StatusCode::BAD_GATEWAY;
        }
    }
    res
}

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The body is larger than the limit.
    #[error("request body too large")]
    TooLarge,
    /// The connection failed or the framing was broken.
    #[error("request body could not be read")]
    Broken,
}

/// Reads a whole request body, refusing it once it passes `limit` bytes (Content-Length and
/// chunked bodies are counted the same way; a declared length past the limit is refused
/// before anything is read). A body that arrives as one frame, as small bodies do, is
/// returned as it is, without a copy.
pub async fn read_body<B>(body: B, limit: usize) -> Result<Bytes, BodyError>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    if body.size_hint().lower() > limit as u64 {
        return Err(BodyError::TooLarge);
    }
    let mut body = std::pin::pin!(body);
    let mut first: Option<Bytes> = None;
    let mut rest = bytes::BytesMut::new();
    while let Some(frame) = body.as_mut().frame().await {
        let Ok(mut data) = frame.map_err(|_| BodyError::Broken)?.into_data() else {
            continue; // trailers
        };
        // Free for `Bytes`, hyper's data type.
        let data = data.copy_to_bytes(data.remaining());
        let len = first.as_ref().map_or(0, Bytes::len) + rest.len() + data.len();
        if len > limit {
            return Err(BodyError::TooLarge);
        }
        match first.take() {
            None if rest.is_empty() => first = Some(data),
            Some(f) => {
                rest.extend_from_slice(&f);
                rest.extend_from_slice(&data);
            }
            None => rest.extend_from_slice(&data),
        }
    }
    Ok(first.unwrap_or_else(|| rest.freeze()))
}

/// `s` split at every `sep`, as `str::split` does, by a plain byte scan: paths, queries
/// and cookies are short, and the general pattern searcher costs more to set up for each
/// piece than such a piece takes to scan. `sep` must be ASCII.
pub fn split_ascii(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    debug_assert!(sep.is_ascii());
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let r = rest?;
        match r.bytes().position(|b| b == sep) {
            Some(i) => {
                rest = r.get(i + 1..);
                r.get(..i)
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// `s` split at its first `sep`, as `str::split_once` does, by a plain byte scan. `sep`
/// must be ASCII.
pub fn split_once_ascii(s: &str, sep: u8) -> Option<(&str, &str)> {
    let i = s.bytes().position(|b| b == sep)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// Query parameters as `(name, value)`, percent-decoded, `+` read as a space.
pub fn query_pairs(query: Option<&str>) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    split_ascii(query.unwrap_or(""), b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = split_once_ascii(pair, b'=').unwrap_or((pair, ""));
            (form_decode(name), form_decode(value))
        })
}

/// The first query parameter whose name matches `name` in any casing. Only that
/// parameter's value is decoded: the Xrfkey check and ticket redemption run this on every
/// request.
pub fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<Cow<'a, str>> {
    split_ascii(query?, b'&')
        .filter(|pair| !pair.is_empty())
        .find_map(|pair| {
            let (k, v) = split_once_ascii(pair, b'=').unwrap_or((pair, ""));
            form_decode(k)
                .eq_ignore_ascii_case(name)
                .then(|| form_decode(v))
        })
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, then percent-decoding
/// ([`percent_decode`]). Borrowed when there is nothing to decode.
pub fn form_decode(s: &str) -> Cow<'_, str> {
    if !s.bytes().any(|b| b == b'+' || b == b'%') {
        return Cow::Borrowed(s);
    }
    if !s.contains('+') {
        return percent_decode(s);
    }
    Cow::Owned(percent_decode(&s.replace('+', " ")).into_owned())
}

/// The query without any parameter named `name` (any casing), other parameters kept byte
/// for byte. `None` when nothing is left.
pub fn query_without(query: Option<&str>, name: &str) -> Option<String> {
    let kept: Vec<&str> = split_ascii(query.unwrap_or(""), b'&')
        .filter(|part| {
            let key = split_ascii(part, b'=').next().unwrap_or("");
            !part.is_empty() && !percent_decode(key).eq_ignore_ascii_case(name)
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}

/// `<name>=<value>; Path=/; HttpOnly[; Secure]<attributes>` as a `Set-Cookie` value, built
/// in one allocation (a login sets one). `None` if it would not be a valid header value.
pub fn session_cookie(
    name: &str,
    value: &str,
    secure: bool,
    attributes: &str,
) -> Option<HeaderValue> {
    let mut cookie = String::with_capacity(name.len() + value.len() + attributes.len() + 32);
    cookie.push_str(name);
    cookie.push('=');
    cookie.push_str(value);
    cookie.push_str("; Path=/; HttpOnly");
    if secure {
        cookie.push_str("; Secure");
    }
    cookie.push_str(attributes);
    HeaderValue::try_from(cookie).ok()
}

/// Cookie values named `name` (exact, case-sensitive as browsers send them), in order.
pub fn cookies<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| split_ascii(v, b';'))
        .filter_map(move |pair| {
            let (k, v) = split_once_ascii(pair, b'=')?;
            (k.trim() == name).then(|| v.trim().trim_matches('"'))
        })
}

/// Percent-encodes everything but ASCII letters, digits and `-_.`, with lowercase hex
/// digits, as .NET's `HttpUtility.UrlEncode` does: auth modules have been seen to compare
/// `proxyRestUri` as a string.
pub fn percent_encode_lower(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    push_percent_encoded_lower(&mut out, s);
    out
}

/// [`percent_encode_lower`] appended to `out`: runs that need no escape (most user names,
/// whole) are copied at once.
pub fn push_percent_encoded_lower(out: &mut String, s: &str) {
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    let mut rest = s;
    // Unreserved bytes are ASCII, so `i` is where a character starts.
    while let Some(i) = rest.bytes().position(|b| !unreserved(b)) {
        out.push_str(&rest[..i]);
        let len = rest[i..].chars().next().map_or(1, char::len_utf8);
        for &b in &rest.as_bytes()[i..i + len] {
            out.push('%');
            out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        rest = &rest[i + len..];
    }
    out.push_str(rest);
}

/// Percent-decodes `s` (`+` is left alone); invalid escapes stay as they are, invalid UTF-8
/// is replaced.
pub fn percent_decode(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn html_escape(s: &str) -> Cow<'_, str> {
    if first_html_special(s.as_bytes()).is_none() {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    push_html_escaped(&mut out, s);
    Cow::Owned(out)
}

/// [`html_escape`] appended to `out`: runs without a special character are copied whole.
pub fn push_html_escaped(out: &mut String, s: &str) {
    let mut rest = s;
    while let Some(i) = first_html_special(rest.as_bytes()) {
        out.push_str(&rest[..i]);
        out.push_str(match rest.as_bytes()[i] {
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'&' => "&amp;",
            b'"' => "&quot;",
            _ => "&#39;",
        });
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
}

/// Where the first of `<>&"'` is, eight bytes at a time (see [`crate::logscan`]).
fn first_html_special(b: &[u8]) -> Option<usize> {
    use crate::logscan::equal;
    let special = |c: u8| matches!(c, b'<' | b'>' | b'&' | b'"' | b'\'');
    let mut words = b.chunks_exact(8);
    let mut at = 0;
    for w in &mut words {
        let mut word = [0u8; 8];
        word.copy_from_slice(w);
        let w = u64::from_le_bytes(word);
        let flagged =
            equal(w, b'<') | equal(w, b'>') | equal(w, b'&') | equal(w, b'"') | equal(w, b'\'');
        if flagged != 0 {
            return Some(at + (flagged.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&c| special(c))
        .map(|i| at + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_matches_dotnet() {
        assert_eq!(
            percent_encode_lower("https://qs.example.com:4243/qps/ext/"),
            "https%3a%2f%2fqs.example.com%3a4243%2fqps%2fext%2f"
        );
    }

    #[test]
    fn percent_encoding_escapes_every_byte_of_a_character() {
        for s in ["", "plain", "j doe/ä", "ä", "€x", "a😀b", "-_.~ +%"] {
            let slow: String = s
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                        char::from(b).to_string()
                    } else {
                        format!("%{b:02x}")
                    }
                })
                .collect();
            assert_eq!(percent_encode_lower(s), slow, "{s}");
        }
    }

    #[test]
    fn percent_decoding_survives_bad_escapes() {
        assert_eq!(percent_decode("a%2Fb%2fc"), "a/b/c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%C3%A9"), "é");
    }

    #[test]
    fn query_pairs_decode_like_form_urlencoded() {
        for q in [
            "a=1&b=%20x+y&&c&=d&e=%zz&f=%C3%A9&g=a=b&h=%2B+",
            "xrfkey=abc&XRFKEY=def",
            "",
        ] {
            let ours: Vec<(String, String)> = query_pairs(Some(q))
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            let reference: Vec<(String, String)> = form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            assert_eq!(ours, reference, "{q}");
        }
        assert_eq!(
            query_param(Some("x%72fkey=A+B"), "XRFKEY").as_deref(),
            Some("A B")
        );
    }

    #[test]
    fn ascii_splits_match_the_standard_ones() {
        for s in [
            "", "a", "/", "//", "/a/b/", "a&b&&c", "é/ü//x", "=", "a=b=c",
        ] {
            for sep in [b'/', b'&', b'='] {
                let ours: Vec<&str> = split_ascii(s, sep).collect();
                let std: Vec<&str> = s.split(char::from(sep)).collect();
                assert_eq!(ours, std, "{s:?} at {sep}");
                assert_eq!(split_once_ascii(s, sep), s.split_once(char::from(sep)));
            }
        }
    }

    #[test]
    fn query_helpers_ignore_case_and_keep_the_rest() {
        let q = Some("a=1&QlikTicket=ABC&b=%20x");
        assert_eq!(query_param(q, "qlikticket").as_deref(), Some("ABC"));
        assert_eq!(
            query_without(q, "qlikTicket").as_deref(),
            Some("a=1&b=%20x")
        );
        assert_eq!(query_without(Some("qlikTicket=A"), "qlikticket"), None);
    }

    #[test]
    fn html_escapes_every_special_wherever_it_falls() {
        let plain = "abcdefghijklmnopqrstuvwxyzé01";
        for at in 0..=plain.len() {
            if !plain.is_char_boundary(at) {
                continue;
            }
            for (special, escaped) in [
                ('<', "&lt;"),
                ('>', "&gt;"),
                ('&', "&amp;"),
                ('"', "&quot;"),
                ('\'', "&#39;"),
            ] {
                let s = format!("{}{special}{}", &plain[..at], &plain[at..]);
                let want = format!("{}{escaped}{}", &plain[..at], &plain[at..]);
                assert_eq!(html_escape(&s), want);
            }
        }
        assert!(matches!(html_escape(plain), Cow::Borrowed(_)));
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut h = HeaderMap::new();
        h.append(
            http::header::COOKIE,
            "a=1; X-Qlik-Session-HTTP=abc".parse().unwrap(),
        );
        h.append(http::header::COOKIE, "X-Qlik-Session=def".parse().unwrap());
        assert_eq!(cookies(&h, "X-Qlik-Session").collect::<Vec<_>>(), ["def"]);
        assert_eq!(
            cookies(&h, "X-Qlik-Session-HTTP").collect::<Vec<_>>(),
            ["abc"]
        );
    }
}
