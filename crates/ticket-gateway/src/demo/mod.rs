//! A built-in demo authentication module ([`qps`]) and QlikView portal ([`qlikview`]), so
//! that a newcomer sees both flows with nothing else installed.
//!
//! Without a users file they trust whatever is typed in: turn them off
//! (`[demo] enabled = false`) anywhere but on a developer's machine. With
//! `[demo] users_file` the module is a real forms login: it asks for a password and checks
//! it (see [`crate::signin::passwords`]); the portal likewise with `[qlikview] users_file`,
//! through QlikView's own form login at `Authenticate.aspx`.

pub(crate) mod qlikview;
pub(crate) mod qps;

use std::collections::HashMap;

use http::{Request, Response, StatusCode};

use crate::http::{page, read_body, Body, BodyError, BoxError};
use crate::state::State;
use crate::text::escape::html as html_escape;

/// A submitted `application/x-www-form-urlencoded` form, by field name.
async fn read_form<B>(
    state: &State,
    req: Request<B>,
) -> Result<HashMap<String, String>, Response<Body>>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    match read_body(req.into_body(), &state.settings.limits).await {
        Ok(body) => Ok(form_urlencoded::parse(&body).into_owned().collect()),
        Err(e) => {
            let status = match e {
                BodyError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                BodyError::TimedOut => StatusCode::REQUEST_TIMEOUT,
                BodyError::Broken => StatusCode::BAD_REQUEST,
            };
            Err(page(status, "The form could not be read", &e.to_string()))
        }
    }
}

/// A demo page: a title, what it is, an error if any, and a form.
fn form_page(title: &str, checks_passwords: bool, error: Option<&str>, form: &str) -> String {
    let note = if checks_passwords {
        "Sign in with a user of the users file."
    } else {
        "Anyone may sign in as anyone here. This is for trying the gateway out; disable it with <code>[demo] enabled = false</code>, or name a <code>users_file</code>."
    };
    let error = error
        .map(|e| format!("<p style=\"color:#b00\">{}</p>", html_escape(e)))
        .unwrap_or_default();
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title></head><body>\
<h1>{title}</h1><p>{note}</p>{error}{form}</body></html>"
    )
}

/// What a failed password login says, the same for an unknown user (no user enumeration).
const WRONG: &str = "Unknown user or wrong password.";
