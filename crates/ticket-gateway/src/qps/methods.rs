//! The sign-in methods of a virtual proxy besides tickets: a header set by a trusted SSO
//! proxy, and `Authorization: Bearer <JWT>`. Whatever the method, a signed-in user gets a
//! session like one made from a ticket (cookie, per-user limit, identity headers, sockets).
//! Neither method ever redirects: a refusal is a `401` with a short reason.

use http::header::AUTHORIZATION;
use http::Request;
use sha2::{Digest, Sha256};
use ticket_core::{EndReason, Identity, Session, StoreError};

use super::error::PageError;
use super::session;
use super::signed_in::{Refusal, SignedIn};
use crate::config::{HeaderAuth, HeaderDirectory, VirtualProxy};
use crate::conn::{peer_in, Conn};
use crate::state::State;
use crate::telemetry::metrics;

/// Header authentication: every request names its user in the header (from a trusted
/// peer only). The session follows the header: the same user keeps theirs, another user
/// gets a new one, and the old one ends.
pub(crate) async fn header<B>(
    state: &State,
    vp: &VirtualProxy,
    rules: &HeaderAuth,
    req: &Request<B>,
    conn: &Conn,
) -> Result<SignedIn, Refusal> {
    let from_trusted = peer_in(&rules.trusted_proxies, conn.peer.ip());
    let value = req
        .headers()
        .get(&rules.name)
        .filter(|_| from_trusted)
        .ok_or(Refusal::Unauthorized("the user header is missing"))?;
    let value = value
        .to_str()
        .ok()
        .filter(|v| v.is_ascii())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or(Refusal::Unauthorized(
            "the user header is empty or not US-ASCII",
        ))?;
    let (directory, user) = match &rules.directory {
        HeaderDirectory::Static(directory) => (directory.as_str(), value),
        HeaderDirectory::Pattern {
            separator,
            directory_first,
        } => {
            let (a, b) = value
                .split_once(separator.as_str())
                .filter(|(a, b)| !a.trim().is_empty() && !b.trim().is_empty())
                .ok_or(Refusal::Unauthorized(
                    "the user header does not match the pattern",
                ))?;
            if *directory_first {
                (a, b)
            } else {
                (b, a)
            }
        }
    };
    let identity = Identity::Qps {
        user_directory: directory.trim().to_owned(),
        user_id: user.trim().to_owned(),
        attributes: Vec::new(),
    };
    if let Some(current) = session::current(state, vp, req.headers()).await? {
        if current.user_key() == identity.user_key() {
            return Ok(SignedIn {
                session: current,
                new: false,
            });
        }
        // Another user on this browser now: the earlier one's session ends.
        state
            .core
            .end_session(&current.realm, &current.id, EndReason::Closed)
            .await?;
    }
    start(state, vp, identity, conn)
        .await
        .map(|session| SignedIn { session, new: true })
}

/// JWT authentication: a bearer token signs its user in. The same token presented again
/// within its life maps to the same session, so a script that sends it on every request
/// does not use up the user's sessions. `None`: no token (a cookie may still serve).
pub(crate) async fn jwt<B>(
    state: &State,
    vp: &VirtualProxy,
    req: &Request<B>,
    conn: &Conn,
) -> Result<Option<SignedIn>, Refusal> {
    let Some(authorization) = req.headers().get(AUTHORIZATION) else {
        return Ok(None);
    };
    let token = authorization
        .to_str()
        .ok()
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or(Refusal::Unauthorized(
            "the Authorization header is not a bearer token",
        ))?;
    let verifier = state
        .jwt
        .get(&vp.realm)
        .ok_or(Refusal::Unauthorized("JWT authentication is not set up"))?;
    let verified = verifier.verify(token).map_err(|why| {
        metrics::ticket_refused("jwt", &vp.prefix, "invalid_token");
        Refusal::Unauthorized(why)
    })?;
    let key = format!(
        "jwt:{}:{}",
        vp.realm,
        hex(&Sha256::digest(token.as_bytes()))
    );
    if let Some(id) = state.core.value(&key).await? {
        if let Some(session) = state.core.touch_session(&vp.realm, &id).await? {
            if session.user_key() == verified.identity.user_key() {
                return Ok(Some(SignedIn { session, new: true }));
            }
        }
    }
    let session = start(state, vp, verified.identity, conn).await?;
    // Remembered as long as the token lives (or as long as a session idles).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let ttl = match verified.expires {
        Some(exp) => std::time::Duration::from_secs(exp.saturating_sub(now).max(1)),
        None => vp.session_inactivity_timeout,
    };
    match state.core.put_value(&key, &session.id, ttl).await {
        Ok(()) | Err(StoreError::Conflict) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Some(SignedIn { session, new: true }))
}

/// A new session for `identity`, within the per-user limit.
pub(crate) async fn start(
    state: &State,
    vp: &VirtualProxy,
    identity: Identity,
    conn: &Conn,
) -> Result<Session, Refusal> {
    match state
        .core
        .start_session(
            &vp.realm,
            identity,
            vp.session_inactivity_timeout,
            Some(vp.session_limit),
        )
        .await
    {
        Ok((session, evicted)) => {
            session::started(vp, &session, evicted, conn);
            Ok(session)
        }
        Err(StoreError::LimitReached) => Err(Refusal::Page(PageError::TooManySessions)),
        Err(e) => Err(e.into()),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
