//! Configuration: the TOML file ([`schema`]), validated into [`Settings`] ([`validate`]),
//! every default in [`defaults`].
//!
//! Every key is optional; `ticket-gateway` with no file serves on the defaults. A bad file
//! is reported as one line naming the key, and the binary exits with 64 (`EX_USAGE`).
//! Nothing here touches the file system: paths (TLS files, the group directory) are
//! resolved against the configuration's directory and loaded by the server and the
//! QlikView dialect when the gateway is built.

mod auth;
pub mod defaults;
mod hosts;
mod responses;
mod schema;
mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::StatusCode;
use ipnet::IpNet;
use ticket_core::SessionLimit;

pub use auth::{
    AttributeMap, Authentication, ClaimOrConstant, HeaderAuth, HeaderDirectory, JwtAuth, OidcAuth,
};
pub use hosts::Hosts;
pub use schema::{AnonymousAccess, ClientAuthMode};

/// Exit code for a configuration the gateway cannot start with (`EX_USAGE`).
pub const EXIT_CONFIG: i32 = 64;

/// Path of the built-in demo authentication module on the front end.
pub const DEMO_LOGIN_PATH: &str = "/demo/login";
/// Path of the built-in demo QlikView portal on the front end.
pub const DEMO_PORTAL_PATH: &str = "/demo/qlikview/";

/// The forward-auth endpoint on the front end.
pub const FORWARD_AUTH_PATH: &str = "/forward-auth";
/// The OpenID Connect callback under a virtual proxy's prefix (Qlik's path).
pub const OIDC_CALLBACK_PATH: &str = "/oidcauthn";
/// How an OpenID Connect configuration endpoint ends; what comes before is the issuer.
pub const OIDC_CONFIGURATION_SUFFIX: &str = "/.well-known/openid-configuration";

/// First path segments a Qlik Sense proxy reserves after the prefix; none may be a prefix.
pub const RESERVED_WORDS: &[&str] = &[
    "qps",
    "qrs",
    "qmc",
    "hub",
    "app",
    "client",
    "sense",
    "resources",
    "content",
    "extensions",
    "dev-hub",
    "api",
    "single",
    "internal_windows_authentication",
    "internal_forms_authentication",
    "demo",
    "qvajaxzfc",
    "qlikview",
    "oidcauthn",
    "forward-auth",
];

/// A configuration error: which key, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    /// The offending key, dotted (`frontend.listen`, `virtual_proxy[1].prefix`), or the
    /// file name for errors that are not about one key.
    pub key: String,
    /// What is wrong, on one line.
    pub message: String,
}

impl ConfigError {
    /// An error about `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The browser-facing listener.
    pub frontend: Endpoint,
    /// The QPS REST API listener.
    pub api: Endpoint,
    /// Lifetime of a ticket.
    pub ticket_ttl: Duration,
    /// Lifetime of a target id.
    pub target_id_ttl: Duration,
    /// Virtual proxies; the default one (prefix `""`) is always present and first.
    pub virtual_proxies: Vec<VirtualProxy>,
    /// Whether the built-in demo authentication module is served.
    pub demo: bool,
    /// The users the demo module checks passwords against (`[demo] users_file`); without
    /// it, anyone may sign in as anyone.
    pub demo_users_file: Option<PathBuf>,
    /// Request limits.
    pub limits: Limits,
    /// Time in-flight requests get to finish on shutdown.
    pub shutdown_grace: Duration,
    /// The QlikView web server.
    pub qlikview: QlikView,
    /// Bounds on upstream requests.
    pub proxy: ProxySettings,
    /// Where tickets and sessions live.
    pub store: StoreSettings,
}

/// The ticket and session store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSettings {
    /// In this process: one node.
    Memory,
    /// In Redis, shared by every node pointed at it.
    Redis {
        /// `redis://host:port[/db]`.
        url: String,
        /// Prefix of every key, so several sites can share one Redis.
        key_prefix: String,
        /// Bound on each store operation; past it the request gets a `503`.
        timeout: Duration,
    },
}

/// The QlikView web server (`/QvAJAXZfc/…`).
#[derive(Debug, Clone)]
pub struct QlikView {
    /// Callers trusted by address to ask for web tickets (`<TrustedIP>`), IPv4 and IPv6
    /// compared literally.
    pub trusted_ips: Vec<IpNet>,
    /// Callers trusted by HTTP Basic credentials (the stand-in for Windows authentication
    /// of the "QlikView Administrators" group).
    pub trusted_accounts: Vec<TrustedAccount>,
    /// Where groups come from when a ticket request names none (loaded when the gateway
    /// is built, again on SIGHUP).
    pub group_directory: Option<PathBuf>,
    /// Hosts `try` and `back` may point to besides the gateway's own (`SafeForwardList`).
    pub safe_forward_hosts: Vec<String>,
    /// The gateway's own host and `safe_forward_hosts`: where `try` and `back` may go.
    pub safe_forward: Hosts,
    /// Where a browser without a session is sent.
    pub login_url: String,
    /// Whether `login_url` is the built-in demo portal (which gets `?try=`).
    pub login_is_demo: bool,
    /// The session cookie.
    pub session_cookie_name: String,
    /// Sliding session inactivity timeout.
    pub session_inactivity_timeout: Duration,
    /// Status of an "Invalid call" refusal.
    pub invalid_call_status: StatusCode,
    /// Body of an "Invalid call" refusal.
    pub invalid_call_body: String,
    /// The QlikView web server authenticated requests go to.
    pub upstream: Option<Upstream>,
    /// The header-authentication header that names the user toward it (`QVUSER`).
    pub upstream_user_header: http::HeaderName,
    /// What goes before the user id in that header (`CUSTOM\`).
    pub upstream_user_prefix: String,
    /// Headers added to every response of the QlikView pages.
    pub additional_response_headers: http::HeaderMap,
    /// The users `Authenticate.aspx` checks form logins against (`username`, `password`).
    pub users_file: Option<PathBuf>,
}

/// A caller trusted by HTTP Basic credentials; only a SHA-256 of the password is kept.
#[derive(Debug, Clone)]
pub struct TrustedAccount {
    /// The user name, as sent (`ACME\portal`).
    pub user: String,
    /// SHA-256 of the password.
    pub password_sha256: [u8; 32],
}

/// A listener: where it binds and the URL the outside world knows it by.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The socket address to bind.
    pub listen: SocketAddr,
    /// Public base URL without a trailing slash, e.g. `http://localhost:8080`.
    pub public_url: String,
    /// TLS, when `tls_cert` and `tls_key` are set: the files, loaded when the gateway is
    /// built.
    pub tls: Option<TlsFiles>,
    /// Hosts redirects may name besides the gateway's own (front end only).
    pub allowed_redirect_hosts: Vec<String>,
}

/// A listener's TLS files, resolved against the configuration's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// PEM CA that client certificates must chain to (API listener only).
    pub client_ca: Option<PathBuf>,
    /// What a missing or foreign client certificate gets.
    pub client_auth: ClientAuthMode,
}

/// Limits applied to every request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request body the API and XML endpoints read.
    pub max_body_bytes: usize,
    /// Time a client has to send its request headers.
    pub header_read_timeout: Duration,
    /// Largest request head (request line and headers); `431` beyond.
    pub max_header_bytes: usize,
    /// Most header lines in a request; `431` beyond.
    pub max_headers: usize,
    /// A keep-alive connection with no traffic for this long is closed.
    pub idle_timeout: Duration,
    /// Most connections open at once over both listeners; more are closed at accept.
    pub max_connections: usize,
    /// Time a request body has to arrive, beyond what its size earns.
    pub body_read_timeout: Duration,
    /// Bytes per second that earn a request body one more second.
    pub body_min_rate: u64,
    /// A WebSocket with no frame either way this long is closed.
    pub websocket_idle_timeout: Duration,
}

/// One Qlik Sense virtual proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualProxy {
    /// The prefix, lowercase; `""` for the default virtual proxy.
    pub prefix: String,
    /// The store realm of its tickets and sessions.
    pub realm: String,
    /// `X-Qlik-Virtual-Proxy-Prefix` toward its back end: the prefix.
    pub prefix_header: http::HeaderValue,
    /// Name of the session cookie over https.
    pub session_cookie_name: String,
    /// Name of the session cookie over plain http: the name with `-HTTP` appended, as Qlik
    /// Sense does since February 2019.
    pub http_session_cookie_name: String,
    /// Where unauthenticated users are sent.
    pub auth_module_redirect_uri: String,
    /// Sliding session inactivity timeout.
    pub session_inactivity_timeout: Duration,
    /// The back end authenticated requests go to; without one the identity page serves.
    pub upstream: Option<Upstream>,
    /// How many live sessions one user may hold here, and what happens past that.
    pub session_limit: SessionLimit,
    /// Extra session cookie attributes: `; SameSite=…` and `; Domain=…`, in that order.
    pub session_cookie_attributes: String,
    /// Whether a WebSocket upgrade must show the session's CSRF token and reuse a session.
    pub websocket_csrf_protection: bool,
    /// The QMC's "Host allow list", as written.
    pub host_allow_list: Vec<String>,
    /// Where this proxy's redirects (`targetUri`, `reloadUri`) may go: the gateway's own
    /// host, `frontend.allowed_redirect_hosts` and the host allow list.
    pub redirect_hosts: Hosts,
    /// Which `Origin` may open a WebSocket: the gateway's own host, the host allow list
    /// and the CORS origins.
    pub origin_hosts: Hosts,
    /// Headers added to every front-end response of this proxy (the QMC's "Additional
    /// response headers"), replacing a back end's of the same name.
    pub additional_response_headers: http::HeaderMap,
    /// Origins (`scheme://host[:port]`) a browser may call this proxy from with its
    /// cookie: each gets CORS headers naming it.
    pub cors_allowed_origins: Vec<http::HeaderValue>,
    /// Who may enter without signing in.
    pub anonymous_access: AnonymousAccess,
    /// How users sign in.
    pub authentication: Authentication,
    /// Client headers that never reach this proxy's back end, besides the identity
    /// headers: the QlikView header-authentication header, and the header or the
    /// `Authorization` this proxy signs users in with.
    pub stripped_headers: Vec<http::HeaderName>,
}

/// A back end: scheme and authority, e.g. `http://127.0.0.1:9000`, parsed once here
/// rather than for every request forwarded to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// `http` (plain HTTP to the back end).
    pub scheme: http::uri::Scheme,
    /// `host:port`.
    pub authority: http::uri::Authority,
    /// The `Host` header requests to it carry: the authority.
    pub host: http::HeaderValue,
}

/// How upstream requests are bounded.
#[derive(Debug, Clone, Copy)]
pub struct ProxySettings {
    /// Time to connect to a back end (`502` past it).
    pub connect_timeout: Duration,
    /// Time for a back end to send its response headers (`504` past it).
    pub timeout: Duration,
}

impl Settings {
    /// The front-end URL of a path under a virtual proxy: `<public url>[/<prefix>]<path>`.
    pub fn frontend_url(&self, vp: &VirtualProxy, path: &str) -> String {
        format!("{}{}", self.frontend.public_url, vp.frontend_path(path))
    }

    /// The embedded defaults: what `ticket-gateway` with no arguments serves.
    pub fn defaults() -> Settings {
        Settings::from_toml("").expect("the embedded defaults are valid")
    }

    /// Validates TOML text; relative paths in it are relative to the working directory.
    pub fn from_toml(text: &str) -> Result<Settings, ConfigError> {
        Settings::parse(text, Path::new("."))
    }

    /// Validates TOML text read from a file in `base`: relative paths in it are relative
    /// to `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Settings, ConfigError> {
        let file: schema::File = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
        validate::validate(file, base)
    }

    /// The virtual proxy with exactly this prefix.
    pub fn virtual_proxy(&self, prefix: &str) -> Option<&VirtualProxy> {
        self.virtual_proxies.iter().find(|vp| vp.prefix == prefix)
    }

    /// The default virtual proxy.
    pub fn default_virtual_proxy(&self) -> &VirtualProxy {
        &self.virtual_proxies[0]
    }
}

/// Flattens a TOML error into one line that names the key when toml knows it.
fn toml_error(text: &str, e: &toml::de::Error) -> ConfigError {
    let key = key_at(text, e.span().map(|s| s.start));
    let (line, message) = crate::datafile::located(text, e);
    let message = match line {
        Some(l) => format!("{message} (line {l})"),
        None => message,
    };
    ConfigError::new(key, message)
}

/// The dotted key at a byte offset: the enclosing `[table]` plus the key on that line.
fn key_at(text: &str, offset: Option<usize>) -> String {
    let Some(offset) = offset else {
        return String::new();
    };
    let before = &text[..offset.min(text.len())];
    let table = before
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("").trim();
    let key = match line.split_once('=') {
        Some((k, _)) if !line.starts_with('[') => k.trim().to_owned(),
        _ => String::new(),
    };
    match (table, key.is_empty()) {
        (Some(t), false) => format!("{t}.{key}"),
        (Some(t), true) => t,
        (None, _) => key,
    }
}

#[cfg(test)]
mod tests;

impl VirtualProxy {
    /// The front-end path of a path under this virtual proxy: `[/<prefix>]<path>`.
    pub fn frontend_path(&self, path: &str) -> String {
        if self.prefix.is_empty() {
            path.to_owned()
        } else {
            format!("/{}{path}", self.prefix)
        }
    }
}
