//! The configuration file as written: every table and key, with serde doing the parsing.
//! Every key is optional (`#[serde(default)]`); what a key may hold beyond its type, and
//! what a missing key means, is decided in [`super::validate`].

use std::collections::BTreeMap;

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct File {
    pub frontend: ListenerFile,
    pub api: ListenerFile,
    pub tickets: TicketsFile,
    pub virtual_proxy: Vec<VirtualProxyFile>,
    pub demo: DemoFile,
    pub limits: LimitsFile,
    pub shutdown: ShutdownFile,
    pub qlikview: QlikViewFile,
    pub proxy: ProxyFile,
    pub store: StoreFile,
}

/// `[store] backend`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Backend {
    #[default]
    Memory,
    Redis,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct StoreFile {
    pub backend: Backend,
    pub url: Option<String>,
    pub key_prefix: Option<String>,
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct ProxyFile {
    pub connect_timeout_seconds: Option<u64>,
    pub timeout_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct QlikViewFile {
    pub trusted_ips: Option<Vec<String>>,
    pub trusted_accounts: Vec<TrustedAccountFile>,
    pub group_directory: Option<String>,
    pub safe_forward_hosts: Vec<String>,
    pub login_url: Option<String>,
    pub session_cookie_name: Option<String>,
    pub session_inactivity_timeout_minutes: Option<u64>,
    pub invalid_call_status: Option<u16>,
    pub invalid_call_body: Option<String>,
    pub upstream: Option<String>,
    pub upstream_user_header: Option<String>,
    pub upstream_user_prefix: Option<String>,
    pub additional_response_headers: BTreeMap<String, String>,
    pub users_file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TrustedAccountFile {
    pub user: String,
    pub password_sha256: String,
}

/// `client_auth` of a listener with `client_ca`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ClientAuthMode {
    /// No valid client certificate, no handshake.
    #[default]
    #[serde(rename = "required")]
    Required,
    /// Every handshake completes; requests without a valid certificate get `403`.
    #[serde(rename = "optional-403")]
    Optional403,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct ListenerFile {
    pub listen: Option<String>,
    pub public_url: Option<String>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    pub client_ca: Option<String>,
    pub client_auth: Option<ClientAuthMode>,
    pub allowed_redirect_hosts: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct TicketsFile {
    pub ttl_seconds: Option<u64>,
    pub target_id_ttl_seconds: Option<u64>,
}

/// `session_limit_policy`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
pub(super) enum LimitPolicy {
    #[default]
    #[serde(rename = "refuse")]
    Refuse,
    #[serde(rename = "evict-oldest")]
    EvictOldest,
}

/// `session_cookie_same_site`, in any casing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub(super) enum SameSite {
    #[serde(rename = "none", alias = "None", alias = "NONE")]
    None,
    #[serde(rename = "lax", alias = "Lax", alias = "LAX")]
    Lax,
    #[serde(rename = "strict", alias = "Strict", alias = "STRICT")]
    Strict,
    #[serde(rename = "")]
    Unset,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct VirtualProxyFile {
    pub prefix: String,
    pub session_cookie_name: Option<String>,
    pub auth_module_redirect_uri: Option<String>,
    pub session_inactivity_timeout_minutes: Option<u64>,
    pub upstream: Option<String>,
    pub max_sessions_per_user: Option<usize>,
    #[serde(default)]
    pub session_limit_policy: LimitPolicy,
    pub session_cookie_same_site: Option<SameSite>,
    pub session_cookie_domain: Option<String>,
    #[serde(default)]
    pub websocket_csrf_protection: bool,
    #[serde(default)]
    pub host_allow_list: Vec<String>,
    #[serde(default)]
    pub additional_response_headers: BTreeMap<String, String>,
    #[serde(default)]
    pub cors_allowed_origins: Vec<String>,
    #[serde(default)]
    pub anonymous_access: AnonymousAccess,
    #[serde(default)]
    pub authentication: Method,
    pub header_name: Option<String>,
    pub header_user_directory: Option<String>,
    pub header_user_directory_pattern: Option<String>,
    pub header_trusted_proxies: Option<Vec<String>>,
    pub jwt_certificate: Option<String>,
    pub jwt_attribute_user_id: Option<String>,
    pub jwt_attribute_user_directory: Option<String>,
    pub jwt_audience: Option<String>,
    #[serde(default)]
    pub jwt_attribute_map: Vec<AttributeMapFile>,
    pub oidc_configuration_endpoint: Option<String>,
    pub oidc_client_id: Option<String>,
    pub oidc_client_secret: Option<String>,
    pub oidc_realm: Option<String>,
    pub oidc_scope: Option<String>,
    pub oidc_attribute_sub: Option<String>,
    pub oidc_attribute_name: Option<String>,
    pub oidc_attribute_groups: Option<String>,
    pub oidc_attribute_email: Option<String>,
    #[serde(default)]
    pub oidc_attribute_map: Vec<AttributeMapFile>,
}

/// `authentication`: how a virtual proxy signs users in.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Method {
    #[default]
    Ticket,
    Header,
    Jwt,
    Oidc,
}

/// One entry of `jwt_attribute_map` or `oidc_attribute_map`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AttributeMapFile {
    pub claim: String,
    pub attribute: String,
    #[serde(default)]
    pub mandatory: bool,
}

/// `anonymous_access`: the QMC's anonymous access modes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnonymousAccess {
    /// Everyone signs in.
    #[default]
    None,
    /// A request without a session gets an anonymous one; it may still sign in.
    Allow,
    /// Nobody is sent to sign in.
    Always,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct DemoFile {
    pub enabled: Option<bool>,
    pub users_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct LimitsFile {
    pub max_body_bytes: Option<usize>,
    pub header_read_timeout_seconds: Option<u64>,
    pub max_header_bytes: Option<usize>,
    pub max_headers: Option<usize>,
    pub idle_timeout_seconds: Option<u64>,
    pub max_connections: Option<usize>,
    pub body_read_timeout_seconds: Option<u64>,
    pub body_min_rate_bytes_per_second: Option<u64>,
    pub websocket_idle_timeout_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct ShutdownFile {
    pub grace_seconds: Option<u64>,
}
