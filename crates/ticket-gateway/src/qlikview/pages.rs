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
use crate::proxy::{self, header_value, Forward};
use ticket_core::Identity;

/// Serves a protected QlikView page: proxied to `[qlikview] upstream` with the user in the
/// header-authentication header (`QVUSER: CUSTOM\jdoe`), or the identity page.
pub(crate) async fn serve<B>(gw: &Gateway, req: Request<B>, conn: &Conn) -> Response<Body>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<crate::http::BoxError>,
{
    let qv = &gw.settings().qlikview;
    match current_session(gw, req.headers()).await {
        Ok(Some(session)) => match &qv.upstream {
            Some(upstream) => {
                let user = match &session.identity {
                    Identity::QlikView { user_id, .. } => user_id.as_str(),
                    Identity::Qps { user_id, .. } => user_id.as_str(),
                };
                let value = header_value(&format!("{}{user}", qv.upstream_user_prefix));
                let to = Forward {
                    upstream,
                    identity: vec![(qv.upstream_user_header.clone(), value)],
                    also_strip: Some(&qv.upstream_user_header),
                    session: (&session.realm, &session.id),
                };
                proxy::forward(gw, req, to, conn).await
            }
            None => {
                let document = query_param(req.uri().query(), "document");
                identity_page::render(req.headers(), req.uri().path(), document.as_deref(), &session.identity)
            }
        },
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
            crate::metrics::store_error();
            QvError::Unavailable.into_response(qv)
        }
    }
}
