//! The way to the authentication module: `302 → <module>?proxyRestUri=…&targetId=…`, and
//! the URLs it is built from. An OpenID Connect proxy sends browsers to its provider
//! instead ([`super::oidc`]).

use http::{Request, Response};
use ticket_core::StoreError;

use super::error::PageError;
use crate::config::VirtualProxy;
use crate::http::{found, percent_encode_lower, query_param, Body};
use crate::state::State;

/// The query parameter naming the page to come back to after login, instead of the one
/// asked for (Qlik's `reloadUri`).
pub(crate) const RELOAD_URI: &str = "reloadUri";

/// `302` to the authentication module for a browser that asked for `req` and has no
/// session.
pub(crate) async fn redirect<B>(
    state: &State,
    vp: &VirtualProxy,
    req: &Request<B>,
) -> Response<Body> {
    match location(state, vp, &target(state, vp, req)).await {
        Ok(location) => found(&location),
        Err(e) => PageError::Unavailable(e).into_response(),
    }
}

/// The page a browser that asked for `req` comes back to after login: its `reloadUri`
/// when that names an allowed host, else the URL asked for (its ticket parameters were
/// taken out already).
pub(crate) fn target<B>(state: &State, vp: &VirtualProxy, req: &Request<B>) -> String {
    let reload = query_param(req.uri().query(), RELOAD_URI)
        .filter(|r| !r.is_empty())
        .and_then(|r| state.redirects.location(&r, "/", &vp.redirect_hosts));
    if let Some(reload) = reload {
        return absolute(state, reload);
    }
    let mut target = format!("{}{}", state.settings.frontend.public_url, req.uri().path());
    if let Some(q) = req.uri().query().filter(|q| !q.is_empty()) {
        target.push('?');
        target.push_str(q);
    }
    target
}

/// `location` made absolute on the front end, when the guard kept it relative: an
/// authentication module sends the browser there from its own host.
pub(crate) fn absolute(state: &State, location: String) -> String {
    if location.starts_with('/') {
        format!("{}{location}", state.settings.frontend.public_url)
    } else {
        location
    }
}

/// The authentication module's URL for a browser that should come back to `target`:
/// `<auth module>?proxyRestUri=<lowercase %xx>&targetId=<new guid>`. On a proxy without
/// a module (header, JWT, OpenID Connect) it is `target` itself: a browser that goes there
/// is signed in the way that proxy signs users in.
pub(crate) async fn location(
    state: &State,
    vp: &VirtualProxy,
    target: &str,
) -> Result<String, StoreError> {
    if !vp.authentication.uses_auth_module() {
        return Ok(target.to_owned());
    }
    let target_id = state.core.new_target(&vp.realm, target).await?;
    let uri = &vp.auth_module_redirect_uri;
    let sep = if uri.contains('?') { '&' } else { '?' };
    Ok(format!(
        "{uri}{sep}proxyRestUri={}&targetId={target_id}",
        percent_encode_lower(&proxy_rest_uri(state, vp))
    ))
}

/// The REST base of a virtual proxy, with the trailing slash auth modules expect:
/// `<api public url>/qps/<prefix>/`, or `/qps/` for the default proxy.
pub(crate) fn proxy_rest_uri(state: &State, vp: &VirtualProxy) -> String {
    let base = &state.settings.api.public_url;
    if vp.prefix.is_empty() {
        format!("{base}/qps/")
    } else {
        format!("{base}/qps/{}/", vp.prefix)
    }
}
