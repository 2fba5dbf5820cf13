//! The way to the authentication module: `302 → <module>?proxyRestUri=…&targetId=…`, and
//! the URLs it is built from.

use ticket_core::StoreError;

use crate::config::VirtualProxy;
use crate::http::percent_encode_lower;
use crate::state::State;

/// The authentication module's URL for a browser that should come back to `target`:
/// `<auth module>?proxyRestUri=<lowercase %xx>&targetId=<new guid>`.
pub(crate) async fn location(
    state: &State,
    vp: &VirtualProxy,
    target: &str,
) -> Result<String, StoreError> {
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

/// The front-end path of a path under a virtual proxy: `[/<prefix>]<path>`.
pub(crate) fn frontend_path(vp: &VirtualProxy, path: &str) -> String {
    if vp.prefix.is_empty() {
        path.to_owned()
    } else {
        format!("/{}{path}", vp.prefix)
    }
}

/// The front-end URL of a path under a virtual proxy: `<public url>[/<prefix>]<path>`.
pub(crate) fn frontend_url(state: &State, vp: &VirtualProxy, path: &str) -> String {
    let base = &state.settings.frontend.public_url;
    if vp.prefix.is_empty() {
        format!("{base}{path}")
    } else {
        format!("{base}/{}{path}", vp.prefix)
    }
}
