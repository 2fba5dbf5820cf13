//! The pages behind a QlikView session: `opendoc.htm`, `opendocnotoolbar.htm`,
//! `singleobject.htm`, the rest of `/QvAJAXZfc/` and the `/QlikView/` portal. Without a
//! session the browser goes to the configured login page; with one, the built-in identity
//! page stands in for the QlikView web server.

use http::{Request, Response};

use super::error::QvError;
use super::session;
use crate::conn::Conn;
use crate::http::headers::header_value;
use crate::http::{found, percent_encode_lower, query_param, Body};
use crate::proxy::Forward;
use crate::state::State;
use crate::{forward_auth, identity_page};

/// Serves a protected QlikView page: proxied to `[qlikview] upstream` with the user in the
/// header-authentication header (`QVUSER: CUSTOM\jdoe`), or the identity page.
pub(crate) async fn serve<B>(state: &State, req: Request<B>, conn: &Conn) -> Response<Body>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<crate::http::BoxError>,
{
    let qv = &state.settings.qlikview;
    match session::current(state, req.headers()).await {
        Ok(Some(session)) if forward_auth::is(&req) => {
            let (_, user) = session.identity.user();
            let value = header_value(&format!("{}{user}", qv.upstream_user_prefix));
            forward_auth::allowed(vec![(qv.upstream_user_header.clone(), value)])
        }
        Ok(Some(session)) => match &qv.upstream {
            Some(upstream) => {
                let (_, user) = session.identity.user();
                let value = header_value(&format!("{}{user}", qv.upstream_user_prefix));
                let to = Forward {
                    upstream,
                    identity: vec![(qv.upstream_user_header.clone(), value)],
                    also_strip: std::slice::from_ref(&qv.upstream_user_header),
                    session: (&session.realm, &session.id),
                    websocket: None,
                };
                state.proxy.forward(req, to, conn).await
            }
            None => {
                let document = query_param(req.uri().query(), "document");
                identity_page::render(
                    req.headers(),
                    req.uri().path(),
                    req.uri().query(),
                    document.as_deref(),
                    &session.identity,
                    identity_page::SignOut::AccessPoint,
                )
            }
        },
        Ok(None) if qv.login_url.is_empty() => QvError::NotSignedIn.into_response(qv),
        Ok(None) if qv.login_is_demo => {
            let back = req.uri().path_and_query().map_or("/", |p| p.as_str());
            found(&format!(
                "{}?try={}",
                qv.login_url,
                percent_encode_lower(back)
            ))
        }
        Ok(None) => found(&qv.login_url),
        Err(e) => QvError::Unavailable(e).into_response(qv),
    }
}
