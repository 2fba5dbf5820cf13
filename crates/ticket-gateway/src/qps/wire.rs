//! The QPS REST documents exactly as the proxy spells them: lenient in, PascalCase out.

// Public for the fuzz targets, property tests and benchmarks (see `crate::fuzzing`).
#![cfg_attr(not(feature = "fuzzing"), allow(unreachable_pub))]

use serde::Serialize;

#[cfg(any(test, feature = "fuzzing"))]
use super::json::Value;
use super::json::{JsonError, Reader, Text};
use crate::identity_page::Attributes;
use crate::text::escape::json_string;

/// A `POST /qps/{vp}/ticket` body, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketRequest {
    /// `UserDirectory`, trimmed.
    pub user_directory: String,
    /// `UserId`, trimmed.
    pub user_id: String,
    /// `Attributes`, flattened to pairs in order.
    pub attributes: Vec<(String, String)>,
    /// `TargetId`; an empty string counts as absent (enigma.js sends `""`).
    pub target_id: Option<String>,
}

impl TicketRequest {
    /// Reads and binds a request body in one pass; the same as [`json::parse`] then
    /// [`TicketRequest::from_json`], errors included, without building the document's tree.
    ///
    /// [`json::parse`]: super::json::parse
    pub fn read(body: &[u8]) -> Result<TicketRequest, String> {
        let mut doc = UserDocument::read(body, "TargetId")?;
        Ok(TicketRequest {
            user_directory: user_text("UserDirectory", &doc.user_directory)?,
            user_id: user_text("UserId", &doc.user_id)?,
            attributes: doc.take_attributes()?,
            target_id: doc.extra_text()?,
        })
    }

    #[cfg(any(test, feature = "fuzzing"))]
    /// Binds a parsed document the way the .NET proxy does: property names in any casing,
    /// unknown properties ignored, scalars read as text.
    pub fn from_json(v: &Value) -> Result<TicketRequest, String> {
        if !matches!(v, Value::Object(_)) {
            return Err("The request body must be a JSON object.".into());
        }
        let user_directory = user_field(v, "UserDirectory")?;
        let user_id = user_field(v, "UserId")?;
        let attributes = attributes(v.member("Attributes"))?;
        let target_id = text(v, "TargetId")?
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        Ok(TicketRequest {
            user_directory,
            user_id,
            attributes,
            target_id,
        })
    }
}

/// A `POST /qps/{vp}/session` body, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRequest {
    /// `UserDirectory`, trimmed.
    pub user_directory: String,
    /// `UserId`, trimmed.
    pub user_id: String,
    /// `Attributes`, flattened to pairs in order.
    pub attributes: Vec<(String, String)>,
    /// `SessionId`: any non-empty string the caller chooses; `None` lets the proxy choose.
    pub session_id: Option<String>,
}

impl SessionRequest {
    /// Reads and binds a request body in one pass, as [`TicketRequest::read`] does.
    pub fn read(body: &[u8]) -> Result<SessionRequest, String> {
        let mut doc = UserDocument::read(body, "SessionId")?;
        Ok(SessionRequest {
            user_directory: user_text("UserDirectory", &doc.user_directory)?,
            user_id: user_text("UserId", &doc.user_id)?,
            attributes: doc.take_attributes()?,
            session_id: doc.extra_text()?,
        })
    }

    #[cfg(any(test, feature = "fuzzing"))]
    /// Binds a parsed document with the same leniency as [`TicketRequest::from_json`].
    pub fn from_json(v: &Value) -> Result<SessionRequest, String> {
        if !matches!(v, Value::Object(_)) {
            return Err("The request body must be a JSON object.".into());
        }
        Ok(SessionRequest {
            user_directory: user_field(v, "UserDirectory")?,
            user_id: user_field(v, "UserId")?,
            attributes: attributes(v.member("Attributes"))?,
            session_id: text(v, "SessionId")?
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        })
    }
}

/// The members a ticket or session request binds, collected in one pass over the body.
/// Names match in any casing and the last of a name wins, as [`Value::member`] finds them;
/// what they held is judged only once the whole document has read well, so a syntax error
/// anywhere is reported before any binding error, as with a parsed tree.
struct UserDocument<'a> {
    object: bool,
    user_directory: Option<Text<'a>>,
    user_id: Option<Text<'a>>,
    attributes: Option<AttributesRead>,
    /// `extra_name`'s value: `TargetId` or `SessionId`.
    extra: Option<Text<'a>>,
    extra_name: &'static str,
}

/// What an `Attributes` member held, judged as it is read.
enum AttributesRead {
    /// `null`: none.
    Null,
    /// The pairs, in order.
    Pairs(Vec<(String, String)>),
    /// The first thing in it that does not bind, as [`attributes`] would report it.
    Refused(String),
}

impl<'a> UserDocument<'a> {
    fn read(body: &'a [u8], extra_name: &'static str) -> Result<UserDocument<'a>, String> {
        let invalid = |e: JsonError| format!("Invalid JSON: {e}.");
        let mut doc = UserDocument {
            object: false,
            user_directory: None,
            user_id: None,
            attributes: None,
            extra: None,
            extra_name,
        };
        let mut r = Reader::open(body).map_err(invalid)?;
        if r.at(b'{') {
            doc.object = true;
            r.object(0, |r, key, depth| {
                let is = |name: &str| key.eq_ignore_ascii_case(name);
                if is("UserDirectory") {
                    doc.user_directory = Some(r.text(depth)?);
                } else if is("UserId") {
                    doc.user_id = Some(r.text(depth)?);
                } else if is("Attributes") {
                    doc.attributes = Some(read_attributes(r, depth)?);
                } else if is(extra_name) {
                    doc.extra = Some(r.text(depth)?);
                } else {
                    r.skip(depth)?;
                }
                Ok(())
            })
            .map_err(invalid)?;
        } else {
            r.skip(0).map_err(invalid)?;
        }
        r.close().map_err(invalid)?;
        if !doc.object {
            return Err("The request body must be a JSON object.".into());
        }
        Ok(doc)
    }

    fn take_attributes(&mut self) -> Result<Vec<(String, String)>, String> {
        match self.attributes.take() {
            None | Some(AttributesRead::Null) => Ok(Vec::new()),
            Some(AttributesRead::Pairs(pairs)) => Ok(pairs),
            Some(AttributesRead::Refused(why)) => Err(why),
        }
    }

    /// `TargetId` or `SessionId`, as [`text`] binds it: an empty string counts as absent.
    fn extra_text(&self) -> Result<Option<String>, String> {
        match &self.extra {
            None | Some(Text::Null) => Ok(None),
            Some(Text::Text(t)) => Ok((!t.is_empty()).then(|| t.clone().into_owned())),
            Some(Text::NotText) => Err(format!("{} must be a string.", self.extra_name)),
        }
    }
}

/// `UserDirectory` or `UserId` as read by [`UserDocument::read`], bound as [`user_field`]
/// binds it.
fn user_text(name: &str, value: &Option<Text<'_>>) -> Result<String, String> {
    let text = match value {
        None | Some(Text::Null) => "",
        Some(Text::Text(t)) => t,
        Some(Text::NotText) => return Err(format!("{name} must be a string.")),
    };
    checked_user_field(name, text)
}

/// An `Attributes` value at `depth`, bound as [`attributes`] binds one.
fn read_attributes(r: &mut Reader<'_>, depth: usize) -> Result<AttributesRead, JsonError> {
    let not_objects = || "Attributes must be an array of objects.".to_owned();
    if !r.at(b'[') {
        return Ok(match r.text(depth)? {
            Text::Null => AttributesRead::Null,
            _ => AttributesRead::Refused(not_objects()),
        });
    }
    let mut pairs = Vec::new();
    let mut refused: Option<String> = None;
    // The depth check `text` and `skip` make on entering a value, made here for the array
    // itself: it is walked in place.
    r.entered(depth, |r, depth| {
        r.array(depth, |r, depth| {
            if refused.is_some() || !r.at(b'{') {
                r.skip(depth)?;
                refused.get_or_insert_with(not_objects);
                return Ok(());
            }
            r.entered(depth, |r, depth| {
                r.object(depth, |r, key, depth| {
                    let value = r.text(depth)?;
                    if refused.is_none() {
                        match value {
                            Text::NotText => {
                                refused =
                                    Some(format!("Attribute {key} must have a string value."));
                            }
                            Text::Null => pairs.push((key.into_owned(), String::new())),
                            Text::Text(v) => pairs.push((key.into_owned(), v.into_owned())),
                        }
                    }
                    Ok(())
                })
            })
        })
    })?;
    Ok(match refused {
        Some(why) => AttributesRead::Refused(why),
        None => AttributesRead::Pairs(pairs),
    })
}

/// A session struct as the session API writes it: keys in the order `UserDirectory,
/// UserId, Attributes, SessionId`, `Attributes` always present.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SessionDoc<'a> {
    user_directory: &'a str,
    user_id: &'a str,
    attributes: Attributes<'a>,
    session_id: &'a str,
}

impl<'a> SessionDoc<'a> {
    /// The document of `session`.
    pub(crate) fn of(session: &'a ticket_core::Session) -> Self {
        let (user_directory, user_id) = session.identity.user();
        SessionDoc {
            user_directory,
            user_id,
            attributes: Attributes(qps_attributes(&session.identity)),
            session_id: &session.id,
        }
    }
}

/// `DELETE /qps/{vp}/session/{id}`: the session ended, and whether it was its user's last.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DeletedDoc<'a> {
    /// The session ended.
    pub session: SessionDoc<'a>,
    /// Whether the user has no session left.
    pub last_session_for_user: bool,
}

/// A list of session structs.
pub(crate) fn sessions_doc(sessions: &[ticket_core::Session]) -> Vec<SessionDoc<'_>> {
    sessions.iter().map(SessionDoc::of).collect()
}

/// The attributes of a Qlik Sense user (a QlikView user has none).
fn qps_attributes(identity: &ticket_core::Identity) -> &[(String, String)] {
    match identity {
        ticket_core::Identity::Qps { attributes, .. } => attributes,
        ticket_core::Identity::QlikView { .. } => &[],
    }
}

#[cfg(any(test, feature = "fuzzing"))]
fn text<'v>(v: &'v Value<'_>, name: &str) -> Result<Option<&'v str>, String> {
    match v.member(name) {
        None => Ok(None),
        Some(m) => m.as_text().map_err(|_| format!("{name} must be a string.")),
    }
}

#[cfg(any(test, feature = "fuzzing"))]
/// `UserDirectory` and `UserId`: trimmed, not empty, no backslash (Qlik's documented rule).
fn user_field(v: &Value, name: &str) -> Result<String, String> {
    checked_user_field(name, text(v, name)?.unwrap_or_default())
}

fn checked_user_field(name: &str, text: &str) -> Result<String, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(format!("{name} is missing or empty."));
    }
    if trimmed.contains('\\') {
        return Err(format!("{name} must not contain a backslash."));
    }
    Ok(trimmed.to_owned())
}

#[cfg(any(test, feature = "fuzzing"))]
/// `Attributes`: an array of objects, each usually one `{"key":"value"}` pair; keys repeat,
/// values may be empty, order is kept.
fn attributes(v: Option<&Value>) -> Result<Vec<(String, String)>, String> {
    let items = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err("Attributes must be an array of objects.".into()),
    };
    let mut out = Vec::new();
    for item in items {
        let Value::Object(members) = item else {
            return Err("Attributes must be an array of objects.".into());
        };
        for (k, v) in members {
            let value = v
                .as_text()
                .map_err(|_| format!("Attribute {k} must have a string value."))?;
            out.push((k.as_ref().to_owned(), value.unwrap_or_default().to_owned()));
        }
    }
    Ok(out)
}

/// The `201` body of a ticket request: keys in the order
/// `UserDirectory, UserId, Attributes, Ticket, TargetUri`, `TargetUri` null when unknown.
///
/// Written by hand, not with serde: it is the reply of every login, and the escaper copies
/// each string whole when nothing needs escaping.
pub(crate) fn ticket_response(stored: &ticket_core::Ticket, ticket: &str) -> Vec<u8> {
    let (dir, user) = stored.identity.user();
    let attrs = qps_attributes(&stored.identity);
    let mut out = Vec::with_capacity(
        96 + dir.len()
            + user.len()
            + attrs
                .iter()
                .map(|(k, v)| k.len() + v.len() + 8)
                .sum::<usize>()
            + stored.target_uri.as_ref().map_or(0, String::len),
    );
    out.extend_from_slice(b"{\"UserDirectory\":");
    json_string(&mut out, dir);
    out.extend_from_slice(b",\"UserId\":");
    json_string(&mut out, user);
    out.extend_from_slice(b",\"Attributes\":[");
    for (i, (k, v)) in attrs.iter().enumerate() {
        out.extend_from_slice(if i == 0 { b"{" } else { b",{" });
        json_string(&mut out, k);
        out.push(b':');
        json_string(&mut out, v);
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"Ticket\":");
    json_string(&mut out, ticket);
    out.extend_from_slice(b",\"TargetUri\":");
    match &stored.target_uri {
        Some(t) => json_string(&mut out, t),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
    out
}

#[cfg(test)]
mod tests {
    use super::super::json::parse;
    use super::*;

    fn req(body: &str) -> Result<TicketRequest, String> {
        TicketRequest::from_json(&parse(body.as_bytes()).unwrap())
    }

    #[test]
    fn binds_every_variant_clients_send() {
        let r = req(r#"{"userDirectory":" ACME ","userId":"jdoe","ProxyRestUri":"x","NewUser":true,"TargetId":""}"#)
            .unwrap();
        assert_eq!(r.user_directory, "ACME");
        assert_eq!(r.target_id, None);
        assert!(r.attributes.is_empty());
        let r = req(r#"{"UserDirectory":"D","UserId":"U","Attributes":[{"Group":"A"},{"Group":"B"},{"email":""},{"n":5,"x":null}]}"#)
            .unwrap();
        let pairs: Vec<(&str, &str)> = r
            .attributes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("Group", "A"),
                ("Group", "B"),
                ("email", ""),
                ("n", "5"),
                ("x", "")
            ]
        );
    }

    #[test]
    fn refuses_bad_users() {
        for body in [
            r#"{"UserId":"u"}"#,
            r#"{"UserDirectory":"  ","UserId":"u"}"#,
            r#"{"UserDirectory":"D","UserId":"a\\b"}"#,
            r#"{"UserDirectory":"D","UserId":["u"]}"#,
            r#"{"UserDirectory":"D","UserId":"u","Attributes":{"a":"b"}}"#,
            r#"{"UserDirectory":"D","UserId":"u","Attributes":["a"]}"#,
            r#"{"UserDirectory":"D","UserId":"u","Attributes":[{"a":{}}]}"#,
            r#"[]"#,
        ] {
            assert!(req(body).is_err(), "{body}");
        }
    }

    /// Reading in one pass is parsing then binding, outcome for outcome.
    #[test]
    fn one_pass_reading_matches_parsing_then_binding() {
        let reference = |body: &str| {
            parse(body.as_bytes())
                .map_err(|e| format!("Invalid JSON: {e}."))
                .and_then(|v| TicketRequest::from_json(&v))
        };
        let session_reference = |body: &str| {
            parse(body.as_bytes())
                .map_err(|e| format!("Invalid JSON: {e}."))
                .and_then(|v| SessionRequest::from_json(&v))
        };
        for body in [
            r#"{"UserDirectory":"ACME","UserId":"jdoe","Attributes":[{"Group":"Sales"}],"TargetId":"t"}"#,
            r#"{ 'UserId':'u','UserDirectory':'d','Attributes': [],}"#,
            r#"{userdirectory:" D ",USERID:5,attributes:null,targetid:"",x:[1,{"a":[]}]}"#,
            r#"{"UserDirectory":"D","UserId":"u","UserId":"v","Attributes":[{"a":"1"}],"attributes":[{"b":true}]}"#,
            r#"{"UserDirectory":"D","UserId":"u","Attributes":[{"a":null,"b":2.5e3},{},{"c":"x\ty"}]}"#,
            r#"{"UserDirectory":"D","UserId":"u","Attributes":["a",{"k":{}}]}"#,
            r#"{"UserDirectory":"D","UserId":"u","Attributes":[{"k":{}},"a"]}"#,
            r#"{"UserDirectory":"D","UserId":"u","Attributes":{"a":"b"}}"#,
            r#"{"UserDirectory":"D","UserId":"u","Attributes":"x"}"#,
            r#"{"UserDirectory":"D","UserId":"u","TargetId":[]}"#,
            r#"{"UserDirectory":"D","UserId":"u","TargetId":true,"SessionId":false}"#,
            r#"{"UserDirectory":[],"UserId":{}}"#,
            r#"{"UserDirectory":"a\\b","UserId":"u"}"#,
            r#"{"UserDirectory":"  ","UserId":"u"}"#,
            r#"{"UserId":"u"}"#,
            r#"{"UserDirectory":"D","UserId":["u"], x"#,
            r#"{"UserDirectory":"D","UserId":"u"} x"#,
            r#"[{"UserDirectory":"D","UserId":"u"}]"#,
            r#""text""#,
            "\u{feff}{}",
            "",
            "   ",
            "/* c */ {UserDirectory: 'D', // x\n UserId: 'u'}",
            r#"{"UserDirectory":"D","UserId":"u","Attributes":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}"#,
            r#"{"UserDirectory":"D","UserId":"u","Attributes":[{"k":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}]}"#,
            r#"{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":{"j":{"k":{"l":{"m":{"n":{"o":{"p":{"q":{"r":{"s":{"t":{"u":{"v":{"w":{"x":{"y":{"z":{"A":{"B":{"C":{"D":{"E":{"F":1}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}"#,
        ] {
            assert_eq!(
                TicketRequest::read(body.as_bytes()),
                reference(body),
                "{body}"
            );
            assert_eq!(
                SessionRequest::read(body.as_bytes()),
                session_reference(body),
                "{body}"
            );
        }
    }

    #[test]
    fn the_response_has_the_documented_shape() {
        let r = req(r#"{"UserDirectory":"ACME","UserId":"jdoe","Attributes":[{"Group":"Sales"},{"email":""}]}"#).unwrap();
        let stored = ticket_core::Ticket {
            realm: "qps/".into(),
            identity: ticket_core::Identity::Qps {
                user_directory: r.user_directory,
                user_id: r.user_id,
                attributes: r.attributes,
            },
            target_uri: None,
        };
        assert_eq!(
            String::from_utf8(ticket_response(&stored, "QzSPXzBmJKjhucPF")).unwrap(),
            r#"{"UserDirectory":"ACME","UserId":"jdoe","Attributes":[{"Group":"Sales"},{"email":""}],"Ticket":"QzSPXzBmJKjhucPF","TargetUri":null}"#
        );
    }
}
