//! The pages behind a QlikView session: `opendoc.htm`, `opendocnotoolbar.htm`,
//! `singleobject.htm`, the rest of `/QvAJAXZfc/` and the `/QlikView/` portal. Without a
//! session the browser goes to the configured login page; with one, the built-in identity
//! page stands in for the QlikView web server.

use http::{Request, Response, StatusCode};

use super::current_session;
use super::error::QvError;
use crate::gateway::{Conn, Gateway};
use crate::http::{found, percent_encode_lower, query_param, respond, Body, HTML};
use crate::identity_page;

/// Serves a protected QlikView page.
pub(crate) async fn serve<B>(gw: &Gateway, req: Request<B>, _conn: &Conn) -> Response<Body> {
    let qv = &gw.settings().qlikview;
    match current_session(gw, &req).await {
        Ok(Some(session)) => {
            let document = query_param(req.uri().query(), "document");
            identity_page::render(req.headers(), req.uri().path(), document.as_deref(), &session.identity)
        }
        Ok(None) if qv.login_url.is_empty() => respond(
            StatusCode::UNAUTHORIZED,
            HTML,
            "<!DOCTYPE html><html><head><title>Not signed in</title></head><body><h1>Not signed in</h1><p>Sign in through your portal.</p></body></html>",
        ),
        Ok(None) if qv.login_is_demo => {
            let back = req.uri().path_and_query().map_or("/", |p| p.as_str());
            found(&format!("{}?try={}", qv.login_url, percent_encode_lower(back)))
        }
        Ok(None) => found(&qv.login_url),
        Err(e) => {
            tracing::error!(error = %e, "session store failed");
            QvError::Unavailable.into_response(qv)
        }
    }
}
