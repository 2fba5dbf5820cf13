//! Reading the GetWebTicket document with quick-xml, as leniently as portals need and as
//! strictly as safety requires.
//!
//! Accepted: any or no XML declaration, whitespace between elements, a trailing CRLF,
//! `method = "…"` with spaces, `GroupsIsNames` or `GroupIsNames` (value trimmed, any case),
//! groups in any order, no `GroupList`, `UserId` with a backslash, text the caller did not
//! escape (`Tom & Jerry` is read as written). Refused: malformed XML, any DOCTYPE (and so
//! any entity declaration), nesting deeper than [`MAX_DEPTH`]. Only the five predefined
//! entities and character references are ever decoded; nothing is expanded from the
//! document itself.

// Public for the fuzz targets, property tests and benchmarks (see `crate::fuzzing`).
#![cfg_attr(not(feature = "fuzzing"), allow(unreachable_pub))]

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// Deepest element nesting accepted (the document needs three levels).
pub const MAX_DEPTH: usize = 16;

/// A GetWebTicket request as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebTicketRequest {
    /// The root element's name (`Global` in a real request).
    pub root: String,
    /// The root's `method` attribute, trimmed.
    pub method: Option<String>,
    /// `UserId`, trimmed.
    pub user_id: Option<String>,
    /// `GroupList/string` values, trimmed, empty ones dropped; `None` without a GroupList.
    pub groups: Option<Vec<String>>,
    /// `GroupsIsNames` or `GroupIsNames`: `Some(true)` for names, `Some(false)` for SIDs.
    pub groups_is_names: Option<bool>,
}

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// Not well-formed.
    #[error("malformed XML: {0}")]
    Malformed(String),
    /// A DOCTYPE, and with it any entity declaration.
    #[error("DOCTYPE and entity declarations are not accepted")]
    Doctype,
    /// Nested deeper than [`MAX_DEPTH`].
    #[error("XML nested too deeply")]
    TooDeep,
}

/// Reads a GetWebTicket document. Element names are classified as they open rather than
/// kept as strings: the reader allocates only for the values it returns.
pub fn parse(body: &[u8]) -> Result<WebTicketRequest, XmlError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let mut reader = Reader::from_reader(body);
    reader.config_mut().trim_text(false);
    let mut req = WebTicketRequest::default();
    let mut open = Open {
        path: Vec::with_capacity(64),
        ..Open::default()
    };
    let mut text = String::new();
    let mut seen_root = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| XmlError::Malformed(e.to_string()))?;
        match event {
            Event::DocType(_) => return Err(XmlError::Doctype),
            Event::Start(e) => {
                start(&e, &mut open, &mut req, &mut seen_root)?;
                text.clear();
            }
            Event::Empty(e) => {
                start(&e, &mut open, &mut req, &mut seen_root)?;
                text.clear();
                end(&mut open, &mut req, &text);
            }
            Event::End(_) => {
                end(&mut open, &mut req, &text);
                text.clear();
            }
            Event::Text(t) => {
                if open.depth == 0 {
                    if !String::from_utf8_lossy(&t).trim().is_empty() {
                        return Err(XmlError::Malformed("text outside the root element".into()));
                    }
                } else {
                    match t.unescape() {
                        Ok(s) => text.push_str(&s),
                        // Callers that format the document as a string do not escape `&`:
                        // keep their text as written rather than refuse it.
                        Err(_) => text.push_str(&String::from_utf8_lossy(&t)),
                    }
                }
            }
            Event::CData(c) => text.push_str(&String::from_utf8_lossy(&c)),
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
    if open.depth > 0 {
        return Err(XmlError::Malformed(format!(
            "unclosed element <{}>",
            String::from_utf8_lossy(&open.path)
        )));
    }
    if !seen_root {
        return Err(XmlError::Malformed("no root element".into()));
    }
    Ok(req)
}

/// The elements a GetWebTicket document gives meaning to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Element {
    UserId,
    GroupList,
    String,
    GroupsIsNames,
    #[default]
    Other,
}

impl Element {
    fn of(name: &[u8]) -> Element {
        let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
        match name.len() {
            6 if is("UserId") => Element::UserId,
            6 if is("string") => Element::String,
            9 if is("GroupList") => Element::GroupList,
            12 if is("GroupIsNames") => Element::GroupsIsNames,
            13 if is("GroupsIsNames") => Element::GroupsIsNames,
            _ => Element::Other,
        }
    }
}

/// The open elements, innermost last: what each is, and their names joined by `/` (only
/// an error message ever reads them, so they stay bytes until then).
#[derive(Debug, Default)]
struct Open {
    kinds: [Element; MAX_DEPTH],
    /// Where each element's name starts in `path` (before its `/`).
    marks: [usize; MAX_DEPTH],
    depth: usize,
    path: Vec<u8>,
}

impl Open {
    fn parent(&self) -> Option<Element> {
        self.depth
            .checked_sub(2)
            .and_then(|i| self.kinds.get(i).copied())
    }
}

fn start(
    e: &BytesStart<'_>,
    open: &mut Open,
    req: &mut WebTicketRequest,
    seen_root: &mut bool,
) -> Result<(), XmlError> {
    if open.depth >= MAX_DEPTH {
        return Err(XmlError::TooDeep);
    }
    let name = e.local_name();
    let name = name.as_ref();
    let kind = Element::of(name);
    if open.depth == 0 {
        if *seen_root {
            return Err(XmlError::Malformed("more than one root element".into()));
        }
        *seen_root = true;
        req.root = String::from_utf8_lossy(name).into_owned();
        for attr in e.attributes() {
            let attr = attr.map_err(|e| XmlError::Malformed(e.to_string()))?;
            if attr
                .key
                .local_name()
                .as_ref()
                .eq_ignore_ascii_case(b"method")
            {
                let value = match attr.unescape_value() {
                    Ok(v) => v.trim().to_owned(),
                    Err(_) => String::from_utf8_lossy(&attr.value).trim().to_owned(),
                };
                req.method = Some(value);
            }
        }
    } else if open.depth == 1 && kind == Element::GroupList {
        req.groups.get_or_insert_with(Vec::new);
    }
    open.marks[open.depth] = open.path.len();
    if open.depth > 0 {
        open.path.push(b'/');
    }
    open.path.extend_from_slice(name);
    open.kinds[open.depth] = kind;
    open.depth += 1;
    Ok(())
}

fn end(open: &mut Open, req: &mut WebTicketRequest, text: &str) {
    let Some(top) = open.depth.checked_sub(1) else {
        return;
    };
    let (kind, parent) = (open.kinds[top], open.parent());
    open.path.truncate(open.marks[top]);
    open.depth = top;
    let value = text.trim();
    match (open.depth, kind) {
        (1, Element::UserId) => req.user_id = Some(value.to_owned()),
        (1, Element::GroupsIsNames) => {
            req.groups_is_names = Some(!value.eq_ignore_ascii_case("false"));
        }
        (2, Element::String) if !value.is_empty() && parent == Some(Element::GroupList) => {
            req.groups
                .get_or_insert_with(Vec::new)
                .push(value.to_owned());
        }
        _ => {}
    }
}

/// Writes a request back as a compact document (for round-trip property tests).
#[cfg(any(test, feature = "fuzzing"))]
pub fn write(req: &WebTicketRequest) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let mut out = format!("<{}", req.root);
    if let Some(m) = &req.method {
        out.push_str(&format!(" method=\"{}\"", esc(m)));
    }
    out.push('>');
    if let Some(u) = &req.user_id {
        out.push_str(&format!("<UserId>{}</UserId>", esc(u)));
    }
    if let Some(groups) = &req.groups {
        out.push_str("<GroupList>");
        for g in groups {
            out.push_str(&format!("<string>{}</string>", esc(g)));
        }
        out.push_str("</GroupList>");
    }
    if let Some(n) = req.groups_is_names {
        out.push_str(&format!("<GroupsIsNames>{n}</GroupsIsNames>"));
    }
    out.push_str(&format!("</{}>", req.root));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> WebTicketRequest {
        parse(s.as_bytes()).unwrap_or_else(|e| panic!("{e}: {s}"))
    }

    #[test]
    fn reads_the_compact_form() {
        let r = ok("<Global method=\"GetWebTicket\"><UserId>ACME\\jdoe</UserId><GroupList><string>Sales</string><string>EU</string></GroupList><GroupsIsNames>true</GroupsIsNames></Global>");
        assert_eq!(r.root, "Global");
        assert_eq!(r.method.as_deref(), Some("GetWebTicket"));
        assert_eq!(r.user_id.as_deref(), Some("ACME\\jdoe"));
        assert_eq!(r.groups, Some(vec!["Sales".into(), "EU".into()]));
        assert_eq!(r.groups_is_names, Some(true));
    }

    #[test]
    fn reads_the_documented_spaced_form() {
        let r = ok("<?xml version=\"1.0\"?>\r\n<Global method = \"GetWebTicket\"> <UserId>jdoe</UserId> <GroupList> <string> Sales</string> <string>EU </string> </GroupList> <GroupIsNames>TRUE </GroupIsNames> </Global>\r\n");
        assert_eq!(r.method.as_deref(), Some("GetWebTicket"));
        assert_eq!(r.groups, Some(vec!["Sales".into(), "EU".into()]));
        assert_eq!(r.groups_is_names, Some(true));
        let r = ok("<Global method='GetWebTicket'><GroupsIsNames> false</GroupsIsNames><UserId>x</UserId></Global>");
        assert_eq!(r.groups_is_names, Some(false));
        assert_eq!(r.groups, None);
    }

    #[test]
    fn keeps_unescaped_text_as_written_and_expands_nothing() {
        let r = ok("<Global method=\"GetWebTicket\"><UserId>Tom & Jerry</UserId></Global>");
        assert_eq!(r.user_id.as_deref(), Some("Tom & Jerry"));
        let r = ok("<Global method=\"GetWebTicket\"><UserId>a&amp;b&#65;&xxe;</UserId></Global>");
        assert!(r.user_id.as_deref().unwrap().contains("&xxe;"));
    }

    #[test]
    fn refuses_doctypes_malformed_and_deep_documents() {
        let xxe = "<?xml version=\"1.0\"?><!DOCTYPE Global [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><Global method=\"GetWebTicket\"><UserId>&xxe;</UserId></Global>";
        assert_eq!(parse(xxe.as_bytes()), Err(XmlError::Doctype));
        for bad in [
            "",
            "<Global>",
            "<Global></Other>",
            "<Global/><Global/>",
            "junk",
            "<Global a=\"1></Global>",
        ] {
            assert!(
                matches!(parse(bad.as_bytes()), Err(XmlError::Malformed(_))),
                "{bad:?}"
            );
        }
        let deep = format!("<Global>{}", "<a>".repeat(100));
        assert_eq!(parse(deep.as_bytes()), Err(XmlError::TooDeep));
    }

    #[test]
    fn round_trips() {
        let r = ok("<Global method=\"GetWebTicket\"><UserId>a&amp;b \"c\"</UserId><GroupList><string>x&lt;y</string></GroupList><GroupsIsNames>false</GroupsIsNames></Global>");
        assert_eq!(parse(write(&r).as_bytes()).unwrap(), r);
    }
}
