//! Configuration: the TOML file, its embedded defaults, and validation into [`Settings`].
//!
//! Every key is optional; `ticket-gateway` with no file serves on the defaults below. A bad
//! file is reported as one line naming the key, and the binary exits with 64 (`EX_USAGE`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use ipnet::IpNet;

use http::Uri;
use serde::Deserialize;
use ticket_core::SessionLimit;

/// Exit code for a configuration the gateway cannot start with (`EX_USAGE`).
pub const EXIT_CONFIG: i32 = 64;

/// Default address of the browser-facing listener.
pub const DEFAULT_FRONTEND_LISTEN: &str = "127.0.0.1:8080";
/// Default public base URL of the browser-facing listener.
pub const DEFAULT_FRONTEND_URL: &str = "http://localhost:8080";
/// Default address of the QPS REST API listener.
pub const DEFAULT_API_LISTEN: &str = "127.0.0.1:4243";
/// Default public base URL of the QPS REST API listener.
pub const DEFAULT_API_URL: &str = "http://localhost:4243";
/// Default ticket lifetime: Qlik documents one minute.
pub const DEFAULT_TICKET_TTL_SECONDS: u64 = 60;
/// Default lifetime of a target id (the spec asks for at least ten minutes).
pub const DEFAULT_TARGET_ID_TTL_SECONDS: u64 = 30 * 60;
/// Default session inactivity timeout, as on a fresh Qlik Sense virtual proxy.
pub const DEFAULT_INACTIVITY_MINUTES: u64 = 30;
/// Suffix Qlik Sense adds to the session cookie name over plain http.
pub const HTTP_COOKIE_SUFFIX: &str = "-HTTP";
/// Session cookie of the default virtual proxy on a fresh Qlik Sense install.
pub const DEFAULT_COOKIE_NAME: &str = "X-Qlik-Session";
/// Default limit on request bodies read by the ticket and session endpoints.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// Default time a client has to send its request headers.
pub const DEFAULT_HEADER_READ_TIMEOUT_SECONDS: u64 = 10;
/// Default cap on live sessions per user and virtual proxy, as Qlik Sense enforces.
pub const DEFAULT_MAX_SESSIONS_PER_USER: usize = 5;
/// Default time to connect to a back end.
pub const DEFAULT_CONNECT_TIMEOUT_SECONDS: u64 = 5;
/// Default time a back end has to send its response headers.
pub const DEFAULT_UPSTREAM_TIMEOUT_SECONDS: u64 = 30;
/// The QlikView web server's header-authentication header.
pub const DEFAULT_QV_USER_HEADER: &str = "QVUSER";
/// The prefix QlikView puts before header-authenticated user names.
pub const DEFAULT_QV_USER_PREFIX: &str = "CUSTOM\\";
/// Default Redis URL.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
/// Default prefix of Redis keys.
pub const DEFAULT_KEY_PREFIX: &str = "ticket-gateway:";
/// Default bound on one store operation.
pub const DEFAULT_STORE_TIMEOUT_MS: u64 = 2000;
/// Default limit on a request head, as on a Qlik Sense proxy (`maxHeaderSizeBytes`).
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;
/// Default limit on header lines, as on a Qlik Sense proxy (`maxHeaderLines`).
pub const DEFAULT_MAX_HEADERS: usize = 100;
/// Default keep-alive idle timeout, as on a Qlik Sense proxy (`keepAliveTimeoutSeconds`).
pub const DEFAULT_IDLE_TIMEOUT_SECONDS: u64 = 10;
/// Default cap on open connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default time in-flight requests get to finish on shutdown.
pub const DEFAULT_SHUTDOWN_GRACE_SECONDS: u64 = 10;

/// Path of the built-in demo authentication module on the front end.
pub const DEMO_LOGIN_PATH: &str = "/demo/login";
/// Path of the built-in demo QlikView portal on the front end.
pub const DEMO_PORTAL_PATH: &str = "/demo/qlikview/";
/// The QlikView session cookie AccessPoint uses.
pub const DEFAULT_QLIKVIEW_COOKIE: &str = "AccessPointSession";
/// What an untrusted caller of GetWebTicket gets: every known client parser reads it as a
/// failure.
pub const DEFAULT_INVALID_CALL_BODY: &str = "<Global><_retval_>Invalid call</_retval_></Global>";

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
    fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            message: message.into(),
        }
    }
}

// ---- The file, as written -------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct File {
    frontend: ListenerFile,
    api: ListenerFile,
    tickets: TicketsFile,
    virtual_proxy: Vec<VirtualProxyFile>,
    demo: DemoFile,
    limits: LimitsFile,
    shutdown: ShutdownFile,
    qlikview: QlikViewFile,
    proxy: ProxyFile,
    store: StoreFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct StoreFile {
    backend: Option<String>,
    url: Option<String>,
    key_prefix: Option<String>,
    timeout_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ProxyFile {
    connect_timeout_seconds: Option<u64>,
    timeout_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct QlikViewFile {
    trusted_ips: Option<Vec<String>>,
    trusted_accounts: Vec<TrustedAccountFile>,
    group_directory: Option<String>,
    safe_forward_hosts: Vec<String>,
    login_url: Option<String>,
    session_cookie_name: Option<String>,
    session_inactivity_timeout_minutes: Option<u64>,
    invalid_call_status: Option<u16>,
    invalid_call_body: Option<String>,
    upstream: Option<String>,
    upstream_user_header: Option<String>,
    upstream_user_prefix: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustedAccountFile {
    user: String,
    password_sha256: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ListenerFile {
    listen: Option<String>,
    public_url: Option<String>,
    tls_cert: Option<String>,
    tls_key: Option<String>,
    client_ca: Option<String>,
    client_auth: Option<String>,
    allowed_redirect_hosts: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct TicketsFile {
    ttl_seconds: Option<u64>,
    target_id_ttl_seconds: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VirtualProxyFile {
    prefix: String,
    session_cookie_name: Option<String>,
    auth_module_redirect_uri: Option<String>,
    session_inactivity_timeout_minutes: Option<u64>,
    upstream: Option<String>,
    max_sessions_per_user: Option<usize>,
    session_limit_policy: Option<String>,
    session_cookie_same_site: Option<String>,
    session_cookie_domain: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct DemoFile {
    enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct LimitsFile {
    max_body_bytes: Option<usize>,
    header_read_timeout_seconds: Option<u64>,
    max_header_bytes: Option<usize>,
    max_headers: Option<usize>,
    idle_timeout_seconds: Option<u64>,
    max_connections: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ShutdownFile {
    grace_seconds: Option<u64>,
}

// ---- The settings, validated -----------------------------------------------------------

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
    /// Where groups come from when a ticket request names none.
    pub group_directory: Option<PathBuf>,
    /// The groups read from `group_directory` at start-up.
    pub groups: Arc<crate::qlikview::groups::GroupDirectory>,
    /// Hosts `try` and `back` may point to besides the gateway's own (`SafeForwardList`).
    pub safe_forward_hosts: Vec<String>,
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
    /// TLS, when `tls_cert` and `tls_key` are set.
    pub tls: Option<crate::tls::Tls>,
    /// Hosts redirects may name besides the gateway's own (front end only).
    pub allowed_redirect_hosts: Vec<String>,
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
    /// The embedded defaults: what `ticket-gateway` with no arguments serves.
    pub fn defaults() -> Settings {
        Settings::from_toml("").expect("the embedded defaults are valid")
    }

    /// Reads and validates a TOML file.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(name.clone(), format!("cannot read: {e}")))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Settings::parse(&text, base).map_err(|e| {
            if e.key.is_empty() {
                ConfigError::new(name, e.message)
            } else {
                e
            }
        })
    }

    /// Validates TOML text; relative paths in it are relative to the working directory.
    pub fn from_toml(text: &str) -> Result<Settings, ConfigError> {
        Settings::parse(text, Path::new("."))
    }

    fn parse(text: &str, base: &Path) -> Result<Settings, ConfigError> {
        let file: File = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
        validate(file, base)
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
    let line = e
        .span()
        .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
    let key = key_at(text, e.span().map(|s| s.start));
    let message = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
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

fn validate(file: File, base: &Path) -> Result<Settings, ConfigError> {
    let frontend = endpoint(
        "frontend",
        &file.frontend,
        DEFAULT_FRONTEND_LISTEN,
        DEFAULT_FRONTEND_URL,
        base,
    )?;
    let api = endpoint("api", &file.api, DEFAULT_API_LISTEN, DEFAULT_API_URL, base)?;
    if frontend.listen == api.listen && frontend.listen.port() != 0 {
        return Err(ConfigError::new(
            "api.listen",
            format!("{} is already frontend.listen", api.listen),
        ));
    }
    let ticket_ttl = positive(
        "tickets.ttl_seconds",
        file.tickets
            .ttl_seconds
            .unwrap_or(DEFAULT_TICKET_TTL_SECONDS),
    )?;
    let target_id_ttl = positive(
        "tickets.target_id_ttl_seconds",
        file.tickets
            .target_id_ttl_seconds
            .unwrap_or(DEFAULT_TARGET_ID_TTL_SECONDS),
    )?;
    let demo = file.demo.enabled.unwrap_or(true);
    let demo_login = format!("{}{DEMO_LOGIN_PATH}", frontend.public_url);

    let mut vps: Vec<VirtualProxy> = Vec::new();
    let mut default_seen = false;
    for (i, vp) in file.virtual_proxy.iter().enumerate() {
        let at = |field: &str| format!("virtual_proxy[{i}].{field}");
        let prefix = vp.prefix.clone();
        check_prefix(&prefix).map_err(|m| ConfigError::new(at("prefix"), m))?;
        if vps.iter().any(|v| v.prefix == prefix) || (prefix.is_empty() && default_seen) {
            return Err(ConfigError::new(
                at("prefix"),
                format!("duplicate prefix {prefix:?}"),
            ));
        }
        default_seen |= prefix.is_empty();
        let cookie = match &vp.session_cookie_name {
            Some(c) => c.clone(),
            None if prefix.is_empty() => DEFAULT_COOKIE_NAME.to_owned(),
            None => format!("{DEFAULT_COOKIE_NAME}-{prefix}"),
        };
        check_cookie_name(&cookie).map_err(|m| ConfigError::new(at("session_cookie_name"), m))?;
        if vps
            .iter()
            .any(|v| v.session_cookie_name.eq_ignore_ascii_case(&cookie))
        {
            return Err(ConfigError::new(
                at("session_cookie_name"),
                format!("duplicate session cookie name {cookie:?}"),
            ));
        }
        let redirect = match &vp.auth_module_redirect_uri {
            Some(u) => {
                absolute_url(u).map_err(|m| ConfigError::new(at("auth_module_redirect_uri"), m))?;
                u.clone()
            }
            None if demo => demo_login.clone(),
            None => {
                return Err(ConfigError::new(
                    at("auth_module_redirect_uri"),
                    "required when [demo] enabled = false",
                ))
            }
        };
        let minutes = vp
            .session_inactivity_timeout_minutes
            .unwrap_or(DEFAULT_INACTIVITY_MINUTES);
        let inactivity = positive(&at("session_inactivity_timeout_minutes"), minutes)?;
        let upstream = vp
            .upstream
            .as_deref()
            .map(|u| upstream(&at("upstream"), u))
            .transpose()?;
        let max = vp
            .max_sessions_per_user
            .unwrap_or(DEFAULT_MAX_SESSIONS_PER_USER);
        if max == 0 {
            return Err(ConfigError::new(
                at("max_sessions_per_user"),
                "must be at least 1",
            ));
        }
        let evict_oldest = match vp.session_limit_policy.as_deref() {
            None | Some("refuse") => false,
            Some("evict-oldest") => true,
            Some(other) => {
                return Err(ConfigError::new(
                    at("session_limit_policy"),
                    format!("{other:?} is neither \"refuse\" nor \"evict-oldest\""),
                ))
            }
        };
        let mut cookie_attributes = String::new();
        match vp
            .session_cookie_same_site
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("") => {}
            Some("none") => cookie_attributes.push_str("; SameSite=None"),
            Some("lax") => cookie_attributes.push_str("; SameSite=Lax"),
            Some("strict") => cookie_attributes.push_str("; SameSite=Strict"),
            Some(other) => {
                return Err(ConfigError::new(
                    at("session_cookie_same_site"),
                    format!("{other:?} is not \"none\", \"lax\" or \"strict\""),
                ))
            }
        }
        if let Some(domain) = vp
            .session_cookie_domain
            .as_deref()
            .filter(|d| !d.is_empty())
        {
            let ok = domain
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
            if !ok {
                return Err(ConfigError::new(
                    at("session_cookie_domain"),
                    format!("{domain:?} is not a domain"),
                ));
            }
            cookie_attributes.push_str(&format!("; Domain={domain}"));
        }
        vps.push(VirtualProxy {
            session_cookie_attributes: cookie_attributes,
            realm: ticket_core::model::qps_realm(&prefix),
            // Prefixes are `a-z 0-9 - . _ ~`: always a valid header value.
            prefix_header: http::HeaderValue::from_str(&prefix)
                .unwrap_or_else(|_| http::HeaderValue::from_static("")),
            prefix,
            http_session_cookie_name: format!("{cookie}{HTTP_COOKIE_SUFFIX}"),
            session_cookie_name: cookie,
            auth_module_redirect_uri: redirect,
            session_inactivity_timeout: inactivity * 60,
            upstream,
            session_limit: SessionLimit { max, evict_oldest },
        });
    }
    if !default_seen {
        if !demo {
            return Err(ConfigError::new(
                "virtual_proxy",
                "with [demo] enabled = false, configure the default virtual proxy (prefix = \"\") and its auth_module_redirect_uri",
            ));
        }
        if vps.iter().any(|v| {
            v.session_cookie_name
                .eq_ignore_ascii_case(DEFAULT_COOKIE_NAME)
        }) {
            return Err(ConfigError::new(
                "virtual_proxy",
                format!(
                    "session cookie name {DEFAULT_COOKIE_NAME:?} is the default virtual proxy's"
                ),
            ));
        }
        vps.push(VirtualProxy {
            prefix: String::new(),
            realm: ticket_core::model::qps_realm(""),
            prefix_header: http::HeaderValue::from_static(""),
            session_cookie_name: DEFAULT_COOKIE_NAME.to_owned(),
            http_session_cookie_name: format!("{DEFAULT_COOKIE_NAME}{HTTP_COOKIE_SUFFIX}"),
            auth_module_redirect_uri: demo_login,
            session_inactivity_timeout: Duration::from_secs(DEFAULT_INACTIVITY_MINUTES * 60),
            upstream: None,
            session_cookie_attributes: String::new(),
            session_limit: SessionLimit {
                max: DEFAULT_MAX_SESSIONS_PER_USER,
                evict_oldest: false,
            },
        });
    }
    // The default virtual proxy first: routing falls back to it.
    vps.sort_by_key(|v| !v.prefix.is_empty());

    let max_body_bytes = file.limits.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
    if max_body_bytes == 0 {
        return Err(ConfigError::new(
            "limits.max_body_bytes",
            "must be at least 1",
        ));
    }
    let header_read_timeout = positive(
        "limits.header_read_timeout_seconds",
        file.limits
            .header_read_timeout_seconds
            .unwrap_or(DEFAULT_HEADER_READ_TIMEOUT_SECONDS),
    )?;
    let max_header_bytes = file
        .limits
        .max_header_bytes
        .unwrap_or(DEFAULT_MAX_HEADER_BYTES);
    if max_header_bytes < 8192 {
        return Err(ConfigError::new(
            "limits.max_header_bytes",
            "must be at least 8192",
        ));
    }
    let max_headers = file.limits.max_headers.unwrap_or(DEFAULT_MAX_HEADERS);
    if max_headers == 0 {
        return Err(ConfigError::new("limits.max_headers", "must be at least 1"));
    }
    let idle_timeout = positive(
        "limits.idle_timeout_seconds",
        file.limits
            .idle_timeout_seconds
            .unwrap_or(DEFAULT_IDLE_TIMEOUT_SECONDS),
    )?;
    let max_connections = file
        .limits
        .max_connections
        .unwrap_or(DEFAULT_MAX_CONNECTIONS);
    if max_connections == 0 {
        return Err(ConfigError::new(
            "limits.max_connections",
            "must be at least 1",
        ));
    }
    let shutdown_grace = Duration::from_secs(
        file.shutdown
            .grace_seconds
            .unwrap_or(DEFAULT_SHUTDOWN_GRACE_SECONDS),
    );

    let qlikview = qlikview(file.qlikview, base, demo, &vps)?;
    let proxy = ProxySettings {
        connect_timeout: positive(
            "proxy.connect_timeout_seconds",
            file.proxy
                .connect_timeout_seconds
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT_SECONDS),
        )?,
        timeout: positive(
            "proxy.timeout_seconds",
            file.proxy
                .timeout_seconds
                .unwrap_or(DEFAULT_UPSTREAM_TIMEOUT_SECONDS),
        )?,
    };

    let store = match file.store.backend.as_deref().unwrap_or("memory") {
        "memory" => StoreSettings::Memory,
        "redis" => {
            let url = file
                .store
                .url
                .unwrap_or_else(|| DEFAULT_REDIS_URL.to_owned());
            if !(url.starts_with("redis://")
                || url.starts_with("rediss://")
                || url.starts_with("redis+unix://")
                || url.starts_with("unix://"))
            {
                return Err(ConfigError::new(
                    "store.url",
                    format!("{url:?} is not a redis:// URL"),
                ));
            }
            let timeout_ms = file.store.timeout_ms.unwrap_or(DEFAULT_STORE_TIMEOUT_MS);
            if timeout_ms == 0 {
                return Err(ConfigError::new("store.timeout_ms", "must be at least 1"));
            }
            StoreSettings::Redis {
                url,
                key_prefix: file
                    .store
                    .key_prefix
                    .unwrap_or_else(|| DEFAULT_KEY_PREFIX.to_owned()),
                timeout: Duration::from_millis(timeout_ms),
            }
        }
        other => {
            return Err(ConfigError::new(
                "store.backend",
                format!("{other:?} is neither \"memory\" nor \"redis\""),
            ))
        }
    };

    Ok(Settings {
        store,
        proxy,
        qlikview,
        frontend,
        api,
        ticket_ttl,
        target_id_ttl,
        virtual_proxies: vps,
        demo,
        limits: Limits {
            max_body_bytes,
            header_read_timeout,
            max_header_bytes,
            max_headers,
            idle_timeout,
            max_connections,
        },
        shutdown_grace,
    })
}

fn qlikview(
    file: QlikViewFile,
    base: &Path,
    demo: bool,
    vps: &[VirtualProxy],
) -> Result<QlikView, ConfigError> {
    let raw_ips = file
        .trusted_ips
        .unwrap_or_else(|| vec!["127.0.0.1".into(), "::1".into()]);
    let mut trusted_ips = Vec::with_capacity(raw_ips.len());
    for (i, raw) in raw_ips.iter().enumerate() {
        let net = raw
            .parse::<IpNet>()
            .or_else(|_| raw.parse::<std::net::IpAddr>().map(IpNet::from))
            .map_err(|_| {
                ConfigError::new(
                    format!("qlikview.trusted_ips[{i}]"),
                    format!("{raw:?} is not an address or CIDR range"),
                )
            })?;
        trusted_ips.push(net);
    }
    let mut trusted_accounts = Vec::new();
    for (i, a) in file.trusted_accounts.iter().enumerate() {
        let key = format!("qlikview.trusted_accounts[{i}].password_sha256");
        let hex = a.password_sha256.trim();
        let mut hash = [0u8; 32];
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ConfigError::new(
                key,
                "must be 64 hex digits (sha256sum of the password)",
            ));
        }
        for (j, byte) in hash.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * j..2 * j + 2], 16)
                .map_err(|_| ConfigError::new(key.clone(), "must be 64 hex digits"))?;
        }
        if a.user.is_empty() || a.user.contains(':') {
            return Err(ConfigError::new(
                format!("qlikview.trusted_accounts[{i}].user"),
                "must be non-empty and hold no ':'",
            ));
        }
        trusted_accounts.push(TrustedAccount {
            user: a.user.clone(),
            password_sha256: hash,
        });
    }
    let group_directory = file.group_directory.map(|p| base.join(p));
    let groups = match &group_directory {
        Some(path) => crate::qlikview::groups::GroupDirectory::load(path)
            .map_err(|m| ConfigError::new("qlikview.group_directory", m))?,
        None => Default::default(),
    };
    let safe_forward_hosts = file
        .safe_forward_hosts
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let (login_url, login_is_demo) = match file.login_url {
        Some(u) => (u, false),
        None if demo => (DEMO_PORTAL_PATH.to_owned(), true),
        None => (String::new(), false),
    };
    let cookie = file
        .session_cookie_name
        .unwrap_or_else(|| DEFAULT_QLIKVIEW_COOKIE.to_owned());
    check_cookie_name(&cookie).map_err(|m| ConfigError::new("qlikview.session_cookie_name", m))?;
    if vps
        .iter()
        .any(|v| v.session_cookie_name.eq_ignore_ascii_case(&cookie))
    {
        return Err(ConfigError::new(
            "qlikview.session_cookie_name",
            format!("{cookie:?} is a virtual proxy's session cookie"),
        ));
    }
    let inactivity = positive(
        "qlikview.session_inactivity_timeout_minutes",
        file.session_inactivity_timeout_minutes
            .unwrap_or(DEFAULT_INACTIVITY_MINUTES),
    )?;
    let status = file.invalid_call_status.unwrap_or(200);
    let invalid_call_status = StatusCode::from_u16(status)
        .ok()
        .filter(|s| !s.is_informational() && !s.is_redirection())
        .ok_or_else(|| {
            ConfigError::new(
                "qlikview.invalid_call_status",
                format!("{status} is not a usable status"),
            )
        })?;
    let upstream_qv = file
        .upstream
        .as_deref()
        .map(|u| upstream("qlikview.upstream", u))
        .transpose()?;
    let header = file
        .upstream_user_header
        .unwrap_or_else(|| DEFAULT_QV_USER_HEADER.to_owned());
    let upstream_user_header = http::HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
        ConfigError::new(
            "qlikview.upstream_user_header",
            format!("{header:?} is not a header name"),
        )
    })?;
    let upstream_user_prefix = file
        .upstream_user_prefix
        .unwrap_or_else(|| DEFAULT_QV_USER_PREFIX.to_owned());
    Ok(QlikView {
        upstream: upstream_qv,
        upstream_user_header,
        upstream_user_prefix,
        trusted_ips,
        trusted_accounts,
        group_directory,
        groups: Arc::new(groups),
        safe_forward_hosts,
        login_url,
        login_is_demo,
        session_cookie_name: cookie,
        session_inactivity_timeout: inactivity * 60,
        invalid_call_status,
        invalid_call_body: file
            .invalid_call_body
            .unwrap_or_else(|| DEFAULT_INVALID_CALL_BODY.to_owned()),
    })
}

/// A back end URL: `http://host:port` (no path: requests keep theirs).
fn upstream(key: &str, raw: &str) -> Result<Upstream, ConfigError> {
    let uri = absolute_url(raw).map_err(|m| ConfigError::new(key, m))?;
    if uri.scheme_str() != Some("http") || !matches!(uri.path(), "" | "/") || uri.query().is_some()
    {
        return Err(ConfigError::new(
            key,
            format!("{raw:?} must be http://host[:port], without a path"),
        ));
    }
    let authority = uri
        .authority()
        .cloned()
        .ok_or_else(|| ConfigError::new(key, format!("{raw:?} has no host")))?;
    let host = http::HeaderValue::from_str(authority.as_str())
        .map_err(|_| ConfigError::new(key, format!("{raw:?} is not a valid host")))?;
    Ok(Upstream {
        scheme: http::uri::Scheme::HTTP,
        authority,
        host,
    })
}

fn endpoint(
    table: &str,
    file: &ListenerFile,
    listen: &str,
    url: &str,
    base: &Path,
) -> Result<Endpoint, ConfigError> {
    let raw = file.listen.as_deref().unwrap_or(listen);
    let listen: SocketAddr = raw.parse().map_err(|_| {
        ConfigError::new(
            format!("{table}.listen"),
            format!("{raw:?} is not an address like \"127.0.0.1:8080\" or \"[::1]:8080\""),
        )
    })?;
    let raw = file.public_url.as_deref().unwrap_or(url);
    let uri = absolute_url(raw).map_err(|m| ConfigError::new(format!("{table}.public_url"), m))?;
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(ConfigError::new(
            format!("{table}.public_url"),
            format!("{raw:?} must be a scheme and host only, like \"https://qs.example.com\""),
        ));
    }
    let key = |k: &str| format!("{table}.{k}");
    let tls = match (&file.tls_cert, &file.tls_key) {
        (None, None) => None,
        (Some(cert), Some(key_file)) => {
            let mode = match file.client_auth.as_deref() {
                None | Some("required") => crate::tls::ClientAuthMode::Required,
                Some("optional-403") => crate::tls::ClientAuthMode::Optional403,
                Some(other) => {
                    return Err(ConfigError::new(
                        key("client_auth"),
                        format!("{other:?} is neither \"required\" nor \"optional-403\""),
                    ))
                }
            };
            let ca = file.client_ca.as_ref().map(|c| (base.join(c), mode));
            let loaded = crate::tls::load(
                &base.join(cert),
                &base.join(key_file),
                ca.as_ref().map(|(p, m)| (p.as_path(), *m)),
            )
            .map_err(|(k, m)| ConfigError::new(key(k), m))?;
            Some(loaded)
        }
        (Some(_), None) => return Err(ConfigError::new(key("tls_key"), "tls_cert needs tls_key")),
        (None, Some(_)) => return Err(ConfigError::new(key("tls_cert"), "tls_key needs tls_cert")),
    };
    if table == "frontend" && (file.client_ca.is_some() || file.client_auth.is_some()) {
        return Err(ConfigError::new(
            key(if file.client_ca.is_some() {
                "client_ca"
            } else {
                "client_auth"
            }),
            "only the api listener verifies client certificates",
        ));
    }
    if tls.is_none() && (file.client_ca.is_some() || file.client_auth.is_some()) {
        return Err(ConfigError::new(
            key("client_ca"),
            "client certificates need tls_cert and tls_key",
        ));
    }
    if table == "api" && file.allowed_redirect_hosts.is_some() {
        return Err(ConfigError::new(
            key("allowed_redirect_hosts"),
            "only the frontend redirects browsers",
        ));
    }
    Ok(Endpoint {
        listen,
        public_url: raw.trim_end_matches('/').to_owned(),
        tls,
        allowed_redirect_hosts: file
            .allowed_redirect_hosts
            .iter()
            .flatten()
            .map(|h| h.trim().to_ascii_lowercase())
            .collect(),
    })
}

fn absolute_url(raw: &str) -> Result<Uri, String> {
    let uri: Uri = raw
        .parse()
        .map_err(|_| format!("{raw:?} is not a valid URL"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(h)) if !h.is_empty() => Ok(uri),
        _ => Err(format!("{raw:?} is not an absolute http or https URL")),
    }
}

fn positive(key: &str, value: u64) -> Result<Duration, ConfigError> {
    if value == 0 {
        return Err(ConfigError::new(key, "must be at least 1"));
    }
    Ok(Duration::from_secs(value))
}

/// Qlik's rules: lowercase unreserved characters only, no slash, not a reserved word.
fn check_prefix(prefix: &str) -> Result<(), String> {
    if !prefix
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._~".contains(&b))
    {
        return Err(format!(
            "{prefix:?} may hold only lowercase letters, digits and - . _ ~"
        ));
    }
    if RESERVED_WORDS.contains(&prefix) {
        return Err(format!("{prefix:?} is a reserved word"));
    }
    Ok(())
}

/// A cookie name is an RFC 6265 token.
fn check_cookie_name(name: &str) -> Result<(), String> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(format!("{name:?} is not a valid cookie name"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_serve_loopback_with_the_demo_module() {
        let s = Settings::defaults();
        assert_eq!(s.frontend.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.api.listen.to_string(), "127.0.0.1:4243");
        assert_eq!(s.ticket_ttl, Duration::from_secs(60));
        let vp = s.default_virtual_proxy();
        assert_eq!(vp.prefix, "");
        assert_eq!(vp.session_cookie_name, "X-Qlik-Session");
        assert_eq!(
            vp.auth_module_redirect_uri,
            "http://localhost:8080/demo/login"
        );
    }

    #[test]
    fn the_documented_example_parses() {
        let s = Settings::from_toml(
            r#"
            [frontend]
            listen = "127.0.0.1:8080"
            public_url = "http://localhost:8080"
            [api]
            listen = "127.0.0.1:4243"
            public_url = "http://localhost:4243"
            [tickets]
            ttl_seconds = 60
            [[virtual_proxy]]
            prefix = "ext"
            session_cookie_name = "X-Qlik-Session-ext"
            auth_module_redirect_uri = "https://auth.example.com/login"
            session_inactivity_timeout_minutes = 30
            "#,
        )
        .unwrap();
        assert_eq!(s.virtual_proxies.len(), 2);
        assert_eq!(s.virtual_proxy("ext").unwrap().realm, "qps/ext");
    }

    fn err(text: &str) -> ConfigError {
        Settings::from_toml(text).unwrap_err()
    }

    #[test]
    fn errors_name_the_key() {
        let e = err("[frontend]\nlisten = \"nowhere\"\n");
        assert_eq!(e.key, "frontend.listen");
        let e = err("[frontend]\nlisen = \"127.0.0.1:1\"\n");
        assert_eq!(e.key, "frontend.lisen");
        assert!(e.message.contains("unknown field `lisen`"), "{e}");
        let e = err("[tickets]\nttl_seconds = \"soon\"\n");
        assert_eq!(e.key, "tickets.ttl_seconds");
        let e = err("[[virtual_proxy]]\nprefix = \"a\"\n[[virtual_proxy]]\nprefix = \"a\"\n");
        assert_eq!(e.key, "virtual_proxy[1].prefix");
        let e = err(
            "[[virtual_proxy]]\nprefix = \"a\"\nsession_cookie_name = \"C\"\n[[virtual_proxy]]\nprefix = \"b\"\nsession_cookie_name = \"C\"\n",
        );
        assert_eq!(e.key, "virtual_proxy[1].session_cookie_name");
        let e = err("[[virtual_proxy]]\nprefix = \"Ext\"\n");
        assert_eq!(e.key, "virtual_proxy[0].prefix");
        let e = err("[[virtual_proxy]]\nprefix = \"hub\"\n");
        assert!(e.message.contains("reserved"));
        let e = err("[api]\npublic_url = \"localhost:4243\"\n");
        assert_eq!(e.key, "api.public_url");
        let e = err("[nonsense]\n");
        assert!(e.to_string().contains("nonsense"), "{e}");
        assert!(!e.to_string().contains('\n'));
    }
}
