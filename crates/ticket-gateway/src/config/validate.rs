//! From the file as written ([`super::schema`]) to [`Settings`]: every check that needs
//! more than a type, and every default. Pure: no file is read here.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use http::{StatusCode, Uri};
use ticket_core::SessionLimit;

use super::defaults as d;
use super::schema::{
    Backend, File, LimitPolicy, ListenerFile, QlikViewFile, SameSite, VirtualProxyFile,
};
use super::{
    Authentication, ConfigError, Endpoint, Hosts, Limits, ProxySettings, QlikView, Settings,
    StoreSettings, TlsFiles, TrustedAccount, Upstream, VirtualProxy, DEMO_LOGIN_PATH,
    DEMO_PORTAL_PATH, RESERVED_WORDS,
};

pub(super) fn validate(file: File, base: &Path) -> Result<Settings, ConfigError> {
    let frontend = endpoint(
        "frontend",
        &file.frontend,
        d::FRONTEND_LISTEN,
        d::FRONTEND_URL,
        base,
    )?;
    let api = endpoint("api", &file.api, d::API_LISTEN, d::API_URL, base)?;
    if frontend.listen == api.listen && frontend.listen.port() != 0 {
        return Err(ConfigError::new(
            "api.listen",
            format!("{} is already frontend.listen", api.listen),
        ));
    }
    let ticket_ttl = seconds(
        "tickets.ttl_seconds",
        file.tickets.ttl_seconds,
        d::TICKET_TTL,
    )?;
    let target_id_ttl = seconds(
        "tickets.target_id_ttl_seconds",
        file.tickets.target_id_ttl_seconds,
        d::TARGET_ID_TTL,
    )?;
    let demo = file.demo.enabled.unwrap_or(true);
    let demo_login = format!("{}{DEMO_LOGIN_PATH}", frontend.public_url);

    let own = Hosts::new([frontend.public_url.as_str()], &[]);
    let redirects = own
        .clone()
        .and(&Hosts::new([], &frontend.allowed_redirect_hosts));
    let proxy_ctx = Ctx {
        base,
        demo,
        demo_login: &demo_login,
        own: &own,
        redirects: &redirects,
    };
    let mut vps: Vec<VirtualProxy> = Vec::new();
    for (i, vp) in file.virtual_proxy.iter().enumerate() {
        let parsed = virtual_proxy(&format!("virtual_proxy[{i}]"), vp, &proxy_ctx, &vps)?;
        vps.push(parsed);
    }
    if !vps.iter().any(|v| v.prefix.is_empty()) {
        if !demo {
            return Err(ConfigError::new(
                "virtual_proxy",
                "with [demo] enabled = false, configure the default virtual proxy (prefix = \"\") and its auth_module_redirect_uri",
            ));
        }
        if vps
            .iter()
            .any(|v| v.session_cookie_name.eq_ignore_ascii_case(d::COOKIE_NAME))
        {
            return Err(ConfigError::new(
                "virtual_proxy",
                format!(
                    "session cookie name {:?} is the default virtual proxy's",
                    d::COOKIE_NAME
                ),
            ));
        }
        let default = VirtualProxyFile::default_proxy();
        vps.push(virtual_proxy("virtual_proxy", &default, &proxy_ctx, &[])?);
    }
    // The default virtual proxy first: routing falls back to it.
    vps.sort_by_key(|v| !v.prefix.is_empty());

    let limits = limits(&file)?;
    let shutdown_grace = file
        .shutdown
        .grace_seconds
        .map_or(d::SHUTDOWN_GRACE, Duration::from_secs);
    let qlikview = qlikview(file.qlikview, base, demo, &vps, &own)?;
    for vp in &mut vps {
        vp.stripped_headers
            .push(qlikview.upstream_user_header.clone());
        match &vp.authentication {
            Authentication::Header(h) => vp.stripped_headers.push(h.name.clone()),
            Authentication::Jwt(_) => vp.stripped_headers.push(http::header::AUTHORIZATION),
            Authentication::Ticket | Authentication::Oidc(_) => {}
        }
    }
    let proxy = ProxySettings {
        connect_timeout: seconds(
            "proxy.connect_timeout_seconds",
            file.proxy.connect_timeout_seconds,
            d::CONNECT_TIMEOUT,
        )?,
        timeout: seconds(
            "proxy.timeout_seconds",
            file.proxy.timeout_seconds,
            d::UPSTREAM_TIMEOUT,
        )?,
    };
    let store = match file.store.backend {
        Backend::Memory => StoreSettings::Memory,
        Backend::Redis => {
            let url = file.store.url.unwrap_or_else(|| d::REDIS_URL.to_owned());
            if !["redis://", "rediss://", "redis+unix://", "unix://"]
                .iter()
                .any(|scheme| url.starts_with(scheme))
            {
                return Err(ConfigError::new(
                    "store.url",
                    format!("{url:?} is not a redis:// URL"),
                ));
            }
            let timeout = match file.store.timeout_ms {
                None => d::STORE_TIMEOUT,
                Some(0) => return Err(ConfigError::new("store.timeout_ms", "must be at least 1")),
                Some(ms) => Duration::from_millis(ms),
            };
            StoreSettings::Redis {
                url,
                key_prefix: file
                    .store
                    .key_prefix
                    .unwrap_or_else(|| d::REDIS_KEY_PREFIX.to_owned()),
                timeout,
            }
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
        demo_users_file: file.demo.users_file.map(|p| base.join(p)),
        limits,
        shutdown_grace,
    })
}

impl VirtualProxyFile {
    /// The default virtual proxy as a fresh Qlik Sense site has it, when the file
    /// configures none.
    fn default_proxy() -> VirtualProxyFile {
        VirtualProxyFile::default()
    }
}

/// What every virtual proxy's validation needs of the rest of the file.
struct Ctx<'a> {
    /// The configuration's directory, for the files a proxy names.
    base: &'a Path,
    demo: bool,
    demo_login: &'a str,
    /// The front end's own host.
    own: &'a Hosts,
    /// The own host and `frontend.allowed_redirect_hosts`.
    redirects: &'a Hosts,
}

/// One `[[virtual_proxy]]` table, checked against those before it (`earlier`).
fn virtual_proxy(
    table: &str,
    vp: &VirtualProxyFile,
    ctx: &Ctx<'_>,
    earlier: &[VirtualProxy],
) -> Result<VirtualProxy, ConfigError> {
    let (demo, demo_login) = (ctx.demo, ctx.demo_login);
    let at = |field: &str| format!("{table}.{field}");
    let prefix = vp.prefix.clone();
    check_prefix(&prefix).map_err(|m| ConfigError::new(at("prefix"), m))?;
    if earlier.iter().any(|v| v.prefix == prefix) {
        return Err(ConfigError::new(
            at("prefix"),
            format!("duplicate prefix {prefix:?}"),
        ));
    }
    let cookie = match &vp.session_cookie_name {
        Some(c) => c.clone(),
        None if prefix.is_empty() => d::COOKIE_NAME.to_owned(),
        None => format!("{}-{prefix}", d::COOKIE_NAME),
    };
    check_cookie_name(&cookie).map_err(|m| ConfigError::new(at("session_cookie_name"), m))?;
    if earlier
        .iter()
        .any(|v| v.session_cookie_name.eq_ignore_ascii_case(&cookie))
    {
        return Err(ConfigError::new(
            at("session_cookie_name"),
            format!("duplicate session cookie name {cookie:?}"),
        ));
    }
    let authentication = super::auth::validate(table, vp, ctx.base)?;
    let redirect = match &vp.auth_module_redirect_uri {
        Some(u) => {
            absolute_url(u).map_err(|m| ConfigError::new(at("auth_module_redirect_uri"), m))?;
            u.clone()
        }
        None if demo => demo_login.to_owned(),
        // Header, JWT and OpenID Connect proxies never send anyone to a module.
        None if !authentication.uses_auth_module() => String::new(),
        None => {
            return Err(ConfigError::new(
                at("auth_module_redirect_uri"),
                "required when [demo] enabled = false",
            ))
        }
    };
    let minutes = vp
        .session_inactivity_timeout_minutes
        .unwrap_or(d::INACTIVITY_MINUTES);
    let inactivity = positive(&at("session_inactivity_timeout_minutes"), minutes)? * 60;
    let upstream = vp
        .upstream
        .as_deref()
        .map(|u| upstream(&at("upstream"), u))
        .transpose()?;
    let max = vp.max_sessions_per_user.unwrap_or(d::MAX_SESSIONS_PER_USER);
    if max == 0 {
        return Err(ConfigError::new(
            at("max_sessions_per_user"),
            "must be at least 1",
        ));
    }
    let mut cookie_attributes = String::new();
    match vp.session_cookie_same_site {
        None | Some(SameSite::Unset) => {}
        Some(SameSite::None) => cookie_attributes.push_str("; SameSite=None"),
        Some(SameSite::Lax) => cookie_attributes.push_str("; SameSite=Lax"),
        Some(SameSite::Strict) => cookie_attributes.push_str("; SameSite=Strict"),
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
        cookie_attributes.push_str("; Domain=");
        cookie_attributes.push_str(domain);
    }
    let allow_list: Vec<String> = vp
        .host_allow_list
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    for (j, host) in allow_list.iter().enumerate() {
        if host.is_empty() || host.contains(['/', '@', '\\', ' ']) {
            return Err(ConfigError::new(
                at(&format!("host_allow_list[{j}]")),
                format!("{host:?} is not a host or host:port"),
            ));
        }
    }
    let allowed = Hosts::new([], &allow_list);
    let mut cors_allowed_origins = Vec::new();
    let mut cors_hosts = Hosts::default();
    for (j, origin) in vp.cors_allowed_origins.iter().enumerate() {
        let key = at(&format!("cors_allowed_origins[{j}]"));
        let (value, hosts) =
            super::responses::cors_origin(origin).map_err(|m| ConfigError::new(key, m))?;
        cors_allowed_origins.push(value);
        cors_hosts = cors_hosts.and(&hosts);
    }
    Ok(VirtualProxy {
        stripped_headers: Vec::new(),
        authentication,
        redirect_hosts: ctx.redirects.clone().and(&allowed),
        origin_hosts: ctx.own.clone().and(&allowed).and(&cors_hosts),
        additional_response_headers: super::responses::response_headers(
            &at("additional_response_headers"),
            &vp.additional_response_headers,
        )?,
        cors_allowed_origins,
        anonymous_access: vp.anonymous_access,
        host_allow_list: allow_list,
        websocket_csrf_protection: vp.websocket_csrf_protection,
        session_cookie_attributes: cookie_attributes,
        realm: ticket_core::model::qps_realm(&prefix),
        // Prefixes are `a-z 0-9 - . _ ~`: always a valid header value.
        prefix_header: http::HeaderValue::from_str(&prefix)
            .unwrap_or_else(|_| http::HeaderValue::from_static("")),
        http_session_cookie_name: format!("{cookie}{}", d::HTTP_COOKIE_SUFFIX),
        session_cookie_name: cookie,
        prefix,
        auth_module_redirect_uri: redirect,
        session_inactivity_timeout: inactivity,
        upstream,
        session_limit: SessionLimit {
            max,
            evict_oldest: vp.session_limit_policy == LimitPolicy::EvictOldest,
        },
    })
}

fn limits(file: &File) -> Result<Limits, ConfigError> {
    let l = &file.limits;
    let at_least = |key: &str, value: usize, min: usize| {
        if value < min {
            Err(ConfigError::new(key, format!("must be at least {min}")))
        } else {
            Ok(value)
        }
    };
    Ok(Limits {
        max_body_bytes: at_least(
            "limits.max_body_bytes",
            l.max_body_bytes.unwrap_or(d::MAX_BODY_BYTES),
            1,
        )?,
        header_read_timeout: seconds(
            "limits.header_read_timeout_seconds",
            l.header_read_timeout_seconds,
            d::HEADER_READ_TIMEOUT,
        )?,
        max_header_bytes: at_least(
            "limits.max_header_bytes",
            l.max_header_bytes.unwrap_or(d::MAX_HEADER_BYTES),
            8192,
        )?,
        max_headers: at_least(
            "limits.max_headers",
            l.max_headers.unwrap_or(d::MAX_HEADERS),
            1,
        )?,
        idle_timeout: seconds(
            "limits.idle_timeout_seconds",
            l.idle_timeout_seconds,
            d::IDLE_TIMEOUT,
        )?,
        max_connections: at_least(
            "limits.max_connections",
            l.max_connections.unwrap_or(d::MAX_CONNECTIONS),
            1,
        )?,
        websocket_idle_timeout: seconds(
            "limits.websocket_idle_timeout_seconds",
            l.websocket_idle_timeout_seconds,
            d::WEBSOCKET_IDLE_TIMEOUT,
        )?,
        body_read_timeout: seconds(
            "limits.body_read_timeout_seconds",
            l.body_read_timeout_seconds,
            d::BODY_READ_TIMEOUT,
        )?,
        body_min_rate: at_least(
            "limits.body_min_rate_bytes_per_second",
            l.body_min_rate_bytes_per_second
                .map_or(d::BODY_MIN_RATE as usize, |r| {
                    usize::try_from(r).unwrap_or(usize::MAX)
                }),
            1,
        )? as u64,
    })
}

fn qlikview(
    file: QlikViewFile,
    base: &Path,
    demo: bool,
    vps: &[VirtualProxy],
    own: &Hosts,
) -> Result<QlikView, ConfigError> {
    let trusted_ips = super::auth::networks("qlikview.trusted_ips", file.trusted_ips.as_deref())?;
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
    let safe_forward_hosts: Vec<String> = file
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
        .unwrap_or_else(|| d::QLIKVIEW_COOKIE.to_owned());
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
            .unwrap_or(d::INACTIVITY_MINUTES),
    )? * 60;
    let status = file.invalid_call_status.unwrap_or(d::INVALID_CALL_STATUS);
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
        .unwrap_or_else(|| d::QV_USER_HEADER.to_owned());
    let upstream_user_header = http::HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
        ConfigError::new(
            "qlikview.upstream_user_header",
            format!("{header:?} is not a header name"),
        )
    })?;
    Ok(QlikView {
        additional_response_headers: super::responses::response_headers(
            "qlikview.additional_response_headers",
            &file.additional_response_headers,
        )?,
        users_file: file.users_file.map(|p| base.join(p)),
        upstream: upstream_qv,
        upstream_user_header,
        upstream_user_prefix: file
            .upstream_user_prefix
            .unwrap_or_else(|| d::QV_USER_PREFIX.to_owned()),
        trusted_ips,
        trusted_accounts,
        group_directory: file.group_directory.map(|p| base.join(p)),
        safe_forward: own.clone().and(&Hosts::new([], &safe_forward_hosts)),
        safe_forward_hosts,
        login_url,
        login_is_demo,
        session_cookie_name: cookie,
        session_inactivity_timeout: inactivity,
        invalid_call_status,
        invalid_call_body: file
            .invalid_call_body
            .unwrap_or_else(|| d::INVALID_CALL_BODY.to_owned()),
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
    let key = |k: &str| format!("{table}.{k}");
    let raw = file.listen.as_deref().unwrap_or(listen);
    let listen: SocketAddr = raw.parse().map_err(|_| {
        ConfigError::new(
            key("listen"),
            format!("{raw:?} is not an address like \"127.0.0.1:8080\" or \"[::1]:8080\""),
        )
    })?;
    let raw = file.public_url.as_deref().unwrap_or(url);
    let uri = absolute_url(raw).map_err(|m| ConfigError::new(key("public_url"), m))?;
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(ConfigError::new(
            key("public_url"),
            format!("{raw:?} must be a scheme and host only, like \"https://qs.example.com\""),
        ));
    }
    let verifies = file.client_ca.is_some() || file.client_auth.is_some();
    if table == "frontend" && verifies {
        let k = if file.client_ca.is_some() {
            "client_ca"
        } else {
            "client_auth"
        };
        return Err(ConfigError::new(
            key(k),
            "only the api listener verifies client certificates",
        ));
    }
    let tls = match (&file.tls_cert, &file.tls_key) {
        (None, None) => None,
        (Some(cert), Some(key_file)) => Some(TlsFiles {
            cert: base.join(cert),
            key: base.join(key_file),
            client_ca: file.client_ca.as_ref().map(|c| base.join(c)),
            client_auth: file.client_auth.unwrap_or_default(),
        }),
        (Some(_), None) => return Err(ConfigError::new(key("tls_key"), "tls_cert needs tls_key")),
        (None, Some(_)) => return Err(ConfigError::new(key("tls_cert"), "tls_key needs tls_cert")),
    };
    if tls.is_none() && verifies {
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

/// A count of seconds that must be at least one, or `default`.
fn seconds(key: &str, value: Option<u64>, default: Duration) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) => positive(key, v),
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
