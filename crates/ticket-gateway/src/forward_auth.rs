//! Forward-auth: `GET /forward-auth` answers a reverse proxy (nginx `auth_request`, Caddy
//! `forward_auth`, Traefik ForwardAuth, Envoy `ext_authz`, ingress-nginx `auth-url`) that
//! asks whether a request it holds is signed in, and as whom; the proxy then passes the
//! request to the back end itself, with the identity headers this answer carries.
//!
//! The original request is read from `X-Original-URI`/`X-Original-Method` (nginx),
//! `X-Original-URL` (ingress-nginx) or `X-Forwarded-Uri`/`X-Forwarded-Method` (Caddy,
//! Traefik, Envoy), with the browser's own headers (cookies, `Authorization`, a header
//! authentication header); the router then treats it exactly as if it had come directly,
//! with [`Mode`] in its extensions. Its handlers answer as usual except that, where they
//! would serve the resource, they answer [`allowed`] instead. [`answer`] then shapes the
//! reply for the proxy:
//!
//! - signed in: `200`, no body, every identity header present (empty when not the
//!   dialect's: Caddy 2.6 writes a placeholder's name for a missing one), and at most one
//!   `Set-Cookie`, the session's (nginx passes on only the first);
//! - not signed in: `401` with the login page in `Location` (nginx's `auth_request` takes
//!   only 2xx, 401 and 403), or with `?redirect=true` the `302` itself, for proxies that
//!   pass the answer to the browser (with the OpenID login cookie, if any);
//! - a refusal without a login page (header, JWT, too many sessions): its status and page.
//!
//! A browser sent to `/forward-auth?rd=<URL>` (ingress-nginx's `auth-signin`, which names
//! the original URL in `rd`) gets the login `302`, or, already signed in, a `302` back to
//! the path of `rd`.
//!
//! Identity headers that came with the request never count: the handlers never read them,
//! and they are removed from the original request all the same.

use http::header::{self, HeaderName, HeaderValue, LOCATION, SET_COOKIE};
use http::{Method, Request, Response, StatusCode, Uri};

use crate::config::Settings;
use crate::conn::Conn;
use crate::http::{empty, page, query_param, Body};

/// Marks a request that a reverse proxy described: its handlers answer with [`allowed`]
/// rather than serving the resource.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mode;

/// The headers an answer always carries, in this order.
const IDENTITY: [HeaderName; 4] = [
    HeaderName::from_static("x-qlik-user"),
    HeaderName::from_static("x-qlik-security"),
    HeaderName::from_static("x-qlik-proxysession"),
    HeaderName::from_static("x-qlik-virtual-proxy-prefix"),
];

/// Headers of the question that describe the original request, or that must not reach the
/// handlers as if the browser had sent them.
const NOT_FORWARDED: &[&str] = &[
    "x-original-uri",
    "x-original-url",
    "x-original-method",
    "x-forwarded-uri",
    "x-forwarded-method",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-prefix",
    "x-auth-request-redirect",
    "x-sent-from",
    "upgrade",
    "connection",
    "content-length",
    "transfer-encoding",
    "expect",
    "te",
    "trailer",
];

/// The original request a reverse proxy described, ready for the router.
#[derive(Debug)]
pub(crate) struct Original {
    /// The request, without a body, marked with [`Mode`].
    pub(crate) req: Request<Body>,
    /// The connection as the browser's: TLS when the proxy says the browser used https.
    pub(crate) conn: Conn,
    /// Whether the browser asked for a WebSocket.
    pub(crate) websocket: bool,
    /// Whether the proxy wants the login `302` itself rather than a `401`.
    pub(crate) redirect: bool,
    /// Whether a browser came itself, with the original in `rd`: signed in already, it
    /// goes back there.
    pub(crate) signin: bool,
}

/// What [`answer`] needs to know of the original request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Meta<'a> {
    /// Its path and query.
    pub(crate) target: &'a str,
    /// See [`Original::redirect`].
    pub(crate) redirect: bool,
    /// See [`Original::signin`].
    pub(crate) signin: bool,
}

/// A question that does not describe a request: answered `400` with the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadQuestion(&'static str);

impl BadQuestion {
    pub(crate) fn into_response(self) -> Response<Body> {
        page(
            StatusCode::BAD_REQUEST,
            "Not a forward-auth request",
            self.0,
        )
    }
}

/// Reads the original request out of a question.
pub(crate) fn original<B>(
    settings: &Settings,
    question: &Request<B>,
    conn: &Conn,
) -> Result<Original, BadQuestion> {
    let headers = question.headers();
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    // The path and query of a whole URL (ingress-nginx sends one).
    let path_of = |raw: &str| {
        let url = url::Url::parse(raw).ok()?;
        Some(match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        })
    };
    let described = text("x-original-uri")
        .or_else(|| text("x-forwarded-uri"))
        .map(str::to_owned)
        .or_else(|| path_of(text("x-original-url")?));
    let rd = || {
        let rd = query_param(question.uri().query(), "rd")?;
        if rd.starts_with('/') && !rd.starts_with("//") {
            Some(rd.into_owned())
        } else {
            path_of(&rd)
        }
    };
    let signin = described.is_none();
    let target = described.or_else(rd).filter(|t| t.starts_with('/'));
    let Some(uri) = target.and_then(|t| t.parse::<Uri>().ok()) else {
        return Err(BadQuestion(
            "The original request is missing: send X-Original-URI, X-Original-URL or X-Forwarded-Uri (or rd).",
        ));
    };
    let method = match text("x-original-method").or_else(|| text("x-forwarded-method")) {
        Some(m) => match Method::from_bytes(m.as_bytes()) {
            Ok(m) => m,
            Err(_) => return Err(BadQuestion("X-Original-Method is not a method.")),
        },
        None => Method::GET,
    };
    let secure = match text("x-forwarded-proto") {
        Some(p) if p.eq_ignore_ascii_case("https") => true,
        Some(p) if p.eq_ignore_ascii_case("http") => false,
        _ => settings.frontend.public_url.starts_with("https:"),
    };
    let websocket = headers
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    let mut req = Request::new(empty());
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    let kept = req.headers_mut();
    for (name, value) in headers {
        if !NOT_FORWARDED.contains(&name.as_str()) && !is_identity(name) {
            kept.append(name.clone(), value.clone());
        }
    }
    req.extensions_mut().insert(Mode);
    let mut conn = conn.clone();
    conn.secure = secure;
    Ok(Original {
        req,
        conn,
        websocket,
        redirect: signin
            || query_param(question.uri().query(), "redirect")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
        signin,
    })
}

/// Whether a request is a forward-auth question's original.
pub(crate) fn is<B>(req: &Request<B>) -> bool {
    req.extensions().get::<Mode>().is_some()
}

/// The answer for a signed-in original: `200` with `identity` (the rest added empty by
/// [`answer`]).
pub(crate) fn allowed(identity: Vec<(HeaderName, HeaderValue)>) -> Response<Body> {
    let mut res = Response::new(empty());
    for (name, value) in identity {
        res.headers_mut().insert(name, value);
    }
    res
}

/// A path the reverse proxy should send to the gateway itself (the ticket and session
/// APIs, GetWebTicket, Authenticate.aspx, the logouts, the demo module, the OpenID
/// callback): `403`, so that a misrouted request fails visibly.
pub(crate) fn not_protected() -> Response<Body> {
    page(
        StatusCode::FORBIDDEN,
        "Not a protected path",
        "This path is the gateway's own: route it to the gateway, not through forward-auth.",
    )
}

/// A WebSocket whose `Origin` the virtual proxy does not allow.
pub(crate) fn origin_refused() -> Response<Body> {
    page(
        StatusCode::FORBIDDEN,
        "Origin not allowed",
        "The page that opened this WebSocket is not on the virtual proxy's host allow list.",
    )
}

/// Shapes what the handlers answered about the original request into the reply for the
/// reverse proxy (or, for a sign-in, the browser).
pub(crate) fn answer(
    res: Response<Body>,
    original: Meta<'_>,
    user_header: &HeaderName,
) -> Response<Body> {
    let (parts, body) = res.into_parts();
    let cookie = parts.headers.get(SET_COOKIE).cloned();
    let redirect = original.redirect;
    match parts.status {
        StatusCode::OK if original.signin => {
            let mut out = Response::new(empty());
            *out.status_mut() = StatusCode::FOUND;
            let back = HeaderValue::from_str(original.target)
                .unwrap_or_else(|_| HeaderValue::from_static("/"));
            out.headers_mut().insert(LOCATION, back);
            if let Some(c) = cookie {
                out.headers_mut().insert(SET_COOKIE, c);
            }
            out
        }
        StatusCode::OK => {
            let mut out = Response::new(empty());
            let headers = out.headers_mut();
            for name in IDENTITY.iter().chain(std::iter::once(user_header)) {
                let value = parts
                    .headers
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| HeaderValue::from_static(""));
                headers.insert(name.clone(), value);
            }
            if let Some(c) = cookie {
                headers.insert(SET_COOKIE, c);
            }
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
            out
        }
        status if status.is_redirection() => {
            let Some(location) = parts.headers.get(LOCATION).cloned() else {
                return Response::from_parts(parts, body);
            };
            let mut out = if redirect {
                let mut r = Response::new(empty());
                *r.status_mut() = StatusCode::FOUND;
                r
            } else {
                page(
                    StatusCode::UNAUTHORIZED,
                    "Not signed in",
                    "Sign in at the page Location names.",
                )
            };
            let headers = out.headers_mut();
            headers.insert(LOCATION, location);
            if let Some(c) = cookie {
                headers.insert(SET_COOKIE, c);
            }
            out
        }
        _ => Response::from_parts(parts, body),
    }
}

/// Qlik's identity headers, which a browser must never send for itself.
fn is_identity(name: &HeaderName) -> bool {
    IDENTITY.contains(name) || (name.as_str().starts_with("x-qlik-") && name != "x-qlik-ticket")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The identity headers an answer carries for `headers`, as a back end would see them.
    fn identity_of(headers: &http::HeaderMap) -> Vec<(&str, &str)> {
        headers
            .iter()
            .filter(|(n, _)| n.as_str().starts_with("x-qlik-"))
            .map(|(n, v)| (n.as_str(), v.to_str().unwrap_or("")))
            .collect()
    }

    fn question(headers: &[(&str, &str)], query: &str) -> Request<()> {
        let mut req = Request::get(format!("/forward-auth{query}"))
            .body(())
            .unwrap();
        for (k, v) in headers {
            req.headers_mut().append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        req
    }

    fn conn() -> Conn {
        Conn::new(
            crate::conn::Side::Frontend,
            "127.0.0.1:1".parse().unwrap(),
            false,
            crate::conn::ClientAuth::NotRequired,
        )
    }

    #[test]
    fn the_original_is_read_from_each_proxys_headers() {
        let settings = Settings::defaults();
        for (headers, method, target) in [
            (
                vec![
                    ("X-Original-URI", "/ext/hub/?a=1"),
                    ("X-Original-Method", "POST"),
                ],
                "POST",
                "/ext/hub/?a=1",
            ),
            (
                vec![("X-Forwarded-Uri", "/app/x"), ("X-Forwarded-Method", "PUT")],
                "PUT",
                "/app/x",
            ),
            (
                vec![("X-Original-URL", "https://q.example.com/hub/?b=2")],
                "GET",
                "/hub/?b=2",
            ),
        ] {
            let o = original(&settings, &question(&headers, "?ignored=1"), &conn()).unwrap();
            assert_eq!(o.req.method().as_str(), method);
            assert_eq!(o.req.uri().to_string(), target);
            assert!(is(&o.req));
            assert!(!o.redirect && !o.signin);
        }
        for bad in [
            vec![],
            vec![("X-Original-URI", "http://evil/")],
            vec![("X-Original-URI", "/x"), ("X-Original-Method", "G T")],
        ] {
            let e = original(&settings, &question(&bad, ""), &conn()).unwrap_err();
            assert_eq!(e.into_response().status(), 400);
        }
    }

    #[test]
    fn spoofed_identity_headers_and_descriptors_never_reach_the_handlers() {
        let settings = Settings::defaults();
        let q = question(
            &[
                ("X-Original-URI", "/hub/"),
                ("X-Forwarded-Proto", "https"),
                ("X-Qlik-User", "UserDirectory=ACME; UserId=admin"),
                ("x-qlik-security", "Group=Admins"),
                ("X-Qlik-ProxySession", "abc"),
                ("X-Qlik-Ticket", "TICKETTICKETTICK"),
                ("Cookie", "X-Qlik-Session=1"),
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
            ],
            "?redirect=true",
        );
        let o = original(&settings, &q, &conn()).unwrap();
        assert_eq!(
            identity_of(o.req.headers()),
            [("x-qlik-ticket", "TICKETTICKETTICK")]
        );
        assert!(o.req.headers().get("cookie").is_some());
        assert!(
            o.req.headers().get("upgrade").is_none()
                && o.req.headers().get("x-original-uri").is_none()
        );
        assert!(o.conn.secure && o.websocket && o.redirect);
    }

    #[test]
    fn answers_carry_every_identity_header_and_one_cookie() {
        let qvuser = HeaderName::from_static("qvuser");
        let mut res = allowed(vec![(
            IDENTITY[0].clone(),
            HeaderValue::from_static("UserDirectory=A; UserId=b"),
        )]);
        res.headers_mut()
            .append(SET_COOKIE, HeaderValue::from_static("a=1"));
        let meta = Meta {
            target: "/",
            redirect: false,
            signin: false,
        };
        let res = answer(res, meta, &qvuser);
        assert_eq!(res.status(), 200);
        for name in IDENTITY.iter().chain([&qvuser]) {
            assert!(res.headers().contains_key(name), "{name}");
        }
        assert_eq!(res.headers().get_all(SET_COOKIE).iter().count(), 1);
        let mut login = Response::new(empty());
        *login.status_mut() = StatusCode::FOUND;
        login
            .headers_mut()
            .insert(LOCATION, HeaderValue::from_static("https://auth/"));
        let res = answer(login, meta, &qvuser);
        assert_eq!(res.status(), 401);
        assert_eq!(res.headers()[LOCATION], "https://auth/");
    }
}
