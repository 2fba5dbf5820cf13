//! The built-in resource served to an authenticated browser when no back end is configured:
//! who the gateway thinks the user is. HTML for browsers, JSON for `Accept: application/json`.

use http::header::ACCEPT;
use http::{HeaderMap, Response, StatusCode};
use ticket_core::Identity;

use crate::http::{push_html_escaped, respond, Body, HTML, JSON};
use crate::qps::json::write_string;

/// Renders the identity page for `identity` at `path`. `label` is the virtual proxy prefix
/// of a Qlik Sense session, or the requested document of a QlikView one.
pub fn render(
    headers: &HeaderMap,
    path: &str,
    label: Option<&str>,
    identity: &Identity,
) -> Response<Body> {
    let wants_json = headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/json"));
    if wants_json {
        respond(StatusCode::OK, JSON, json(path, label, identity))
    } else {
        respond(StatusCode::OK, HTML, html(path, label, identity))
    }
}

fn json(path: &str, label: Option<&str>, identity: &Identity) -> String {
    let mut out = String::with_capacity(256);
    out.push('{');
    match identity {
        Identity::Qps {
            user_directory,
            user_id,
            attributes,
        } => {
            out.push_str("\"dialect\":\"qps\",\"virtualProxy\":");
            write_string(&mut out, label.unwrap_or(""));
            out.push_str(",\"userDirectory\":");
            write_string(&mut out, user_directory);
            out.push_str(",\"userId\":");
            write_string(&mut out, user_id);
            out.push_str(",\"attributes\":");
            crate::qps::wire::write_attributes(&mut out, attributes);
        }
        Identity::QlikView {
            user_id,
            groups,
            groups_is_names,
        } => {
            out.push_str("\"dialect\":\"qlikview\",\"userId\":");
            write_string(&mut out, user_id);
            out.push_str(",\"groups\":[");
            for (i, g) in groups.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(&mut out, g);
            }
            out.push_str("],\"groupsIsNames\":");
            out.push_str(if *groups_is_names { "true" } else { "false" });
            out.push_str(",\"document\":");
            match label {
                Some(d) => write_string(&mut out, d),
                None => out.push_str("null"),
            }
        }
    }
    out.push_str(",\"path\":");
    write_string(&mut out, path);
    out.push('}');
    out
}

fn html(path: &str, label: Option<&str>, identity: &Identity) -> String {
    let mut out = String::with_capacity(512);
    out.push_str(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>ticket-gateway: signed in</title></head>\
<body><h1>Signed in</h1><p>No back end is configured, so the gateway shows who you are.</p>\
<table>",
    );
    let mut row = |k: &[&str], v: &str| {
        out.push_str("<tr><th>");
        for part in k {
            push_html_escaped(&mut out, part);
        }
        out.push_str("</th><td>");
        push_html_escaped(&mut out, v);
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
        }
    }
    row(&["Requested path"], path);
    out.push_str("</table></body></html>");
    out
}
