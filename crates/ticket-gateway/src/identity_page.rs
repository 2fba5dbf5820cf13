//! The built-in resource served to an authenticated browser when no back end is configured:
//! who the gateway thinks the user is. HTML for browsers, JSON for `Accept: application/json`.

use http::header::ACCEPT;
use http::{HeaderMap, Response, StatusCode};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use ticket_core::Identity;

use crate::http::{respond, Body, HTML, JSON};
use crate::text::escape::push_html;

/// The JSON form of the page.
#[derive(Serialize)]
#[serde(tag = "dialect", rename_all = "lowercase")]
enum Doc<'a> {
    #[serde(rename_all = "camelCase")]
    Qps {
        virtual_proxy: &'a str,
        user_directory: &'a str,
        user_id: &'a str,
        attributes: Attributes<'a>,
        path: &'a str,
    },
    #[serde(rename_all = "camelCase")]
    QlikView {
        user_id: &'a str,
        groups: &'a [String],
        groups_is_names: bool,
        document: Option<&'a str>,
        path: &'a str,
    },
}

/// How the page's "Sign out" button ends the session.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SignOut<'a> {
    /// `DELETE` on the virtual proxy's personal API, at this path.
    PersonalApi(&'a str),
    /// The AccessPoint logout command.
    AccessPoint,
}

impl SignOut<'_> {
    /// The script behind the button: end the session, then show the page again (which now
    /// sends the browser to sign in).
    fn script(self) -> String {
        let call = match self {
            SignOut::PersonalApi(path) => format!(
                "fetch({}, {{method: 'DELETE', credentials: 'same-origin'}})",
                serde_json::to_string(path).unwrap_or_default()
            ),
            SignOut::AccessPoint => "fetch('/QvAJAXZfc/AccessPoint.aspx', {method: 'POST', credentials: 'same-origin', \
headers: {'Content-Type': 'text/plain'}, body: '<update mark=\"\" stamp=\"\" cookie=\"true\" \
scope=\"Document\" ident=\"AccessPoint\" kind=\"AccessPoint\"><set name=\"AccessPoint.Logout\" action=\"\"/></update>'})"
                .to_owned(),
        };
        format!("{call}.then(() => location.reload())")
    }
}

/// Renders the identity page for `identity` at `path` (with `query`). `label` is the
/// virtual proxy prefix of a Qlik Sense session, or the requested document of a QlikView
/// one; `sign_out` says how its button ends the session.
pub(crate) fn render(
    headers: &HeaderMap,
    path: &str,
    query: Option<&str>,
    label: Option<&str>,
    identity: &Identity,
    sign_out: SignOut<'_>,
) -> Response<Body> {
    let wants_json = headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/json"));
    if wants_json {
        // A struct of strings: serializing cannot fail.
        let body = serde_json::to_vec(&doc(path, label, identity)).unwrap_or_default();
        respond(StatusCode::OK, JSON, body)
    } else {
        respond(
            StatusCode::OK,
            HTML,
            html(path, query, label, identity, sign_out),
        )
    }
}

fn doc<'a>(path: &'a str, label: Option<&'a str>, identity: &'a Identity) -> Doc<'a> {
    match identity {
        Identity::Qps {
            user_directory,
            user_id,
            attributes,
        } => Doc::Qps {
            virtual_proxy: label.unwrap_or(""),
            user_directory,
            user_id,
            attributes: Attributes(attributes),
            path,
        },
        Identity::QlikView {
            user_id,
            groups,
            groups_is_names,
        } => Doc::QlikView {
            user_id,
            groups,
            groups_is_names: *groups_is_names,
            document: label,
            path,
        },
    }
}

fn html(
    path: &str,
    query: Option<&str>,
    label: Option<&str>,
    identity: &Identity,
    sign_out: SignOut<'_>,
) -> String {
    let mut out = String::with_capacity(512);
    out.push_str(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>ticket-gateway: signed in</title></head>\
<body><h1>Signed in</h1><p>No back end is configured, so the gateway shows who you are.</p>\
<table>",
    );
    let mut row = |k: &[&str], v: &str| {
        out.push_str("<tr><th>");
        for part in k {
            push_html(&mut out, part);
        }
        out.push_str("</th><td>");
        push_html(&mut out, v);
        out.push_str("</td></tr>");
    };
    match identity {
        Identity::Qps {
            user_directory,
            user_id,
            attributes,
        } => {
            let vp = label.unwrap_or("");
            row(
                &["Virtual proxy"],
                if vp.is_empty() { "(default)" } else { vp },
            );
            row(&["UserDirectory"], user_directory);
            row(&["UserId"], user_id);
            for (k, v) in attributes {
                row(&["Attribute ", k], v);
            }
        }
        Identity::QlikView {
            user_id,
            groups,
            groups_is_names,
        } => {
            row(&["UserId"], user_id);
            row(&["Groups"], &groups.join(", "));
            row(
                &["GroupsIsNames"],
                if *groups_is_names { "true" } else { "false" },
            );
            row(&["Document"], label.unwrap_or("(none)"));
        }
    }
    row(&["Requested path"], path);
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        row(&["Query"], q);
    }
    out.push_str("</table><p><button id=\"sign-out\" type=\"button\">Sign out</button></p><script>document.getElementById('sign-out').onclick = () => ");
    // The script is the gateway's own, from a path it routed: no client text in it but
    // the JSON-quoted path, which cannot close the script element (`<` is not in a path
    // the router accepts as a virtual proxy's).
    out.push_str(&sign_out.script().replace("</", "<\\/"));
    out.push_str(";</script></body></html>");
    out
}

/// Attributes as Qlik writes them: `[{"k":"v"},…]`, one object per pair, in order.
#[derive(Clone, Copy)]
pub(crate) struct Attributes<'a>(pub &'a [(String, String)]);

impl Serialize for Attributes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for (k, v) in self.0 {
            seq.serialize_element(&Pair(k, v))?;
        }
        seq.end()
    }
}

struct Pair<'a>(&'a str, &'a str);

impl Serialize for Pair<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(self.0, self.1)?;
        map.end()
    }
}
