//! How a virtual proxy signs users in, beyond tickets: a header set by a trusted SSO proxy,
//! a signed JWT, or an OpenID Connect provider.

use std::path::{Path, PathBuf};

use http::HeaderName;
use ipnet::IpNet;

use super::defaults as d;
use super::schema::{Method, VirtualProxyFile};
use super::ConfigError;

/// A virtual proxy's authentication method. The ticket and session APIs work whatever it
/// is, as on Qlik.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    /// Tickets from an authentication module (the default).
    Ticket,
    /// A header names the user on every request.
    Header(HeaderAuth),
    /// `Authorization: Bearer <JWT>`.
    Jwt(JwtAuth),
    /// An OpenID Connect provider, with the authorization code flow.
    Oidc(OidcAuth),
}

impl Authentication {
    /// Whether browsers without a session are sent to an authentication module (tickets),
    /// rather than to a provider or refused.
    pub fn uses_auth_module(&self) -> bool {
        matches!(self, Authentication::Ticket)
    }
}

/// OpenID Connect sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcAuth {
    /// The provider's `/.well-known/openid-configuration`.
    pub configuration_endpoint: url::Url,
    /// The client id registered with the provider.
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
    /// The user directory signed-in users get.
    pub realm: String,
    /// Scopes asked for besides `openid`.
    pub scopes: Vec<String>,
    /// The claim that holds the user id.
    pub sub: String,
    /// The claim of the user's name (attribute `name`).
    pub name: String,
    /// The claim of the user's groups (a `Group` attribute each).
    pub groups: String,
    /// The claim of the user's email address (attribute `email`).
    pub email: String,
    /// Further claims that become attributes.
    pub attributes: Vec<AttributeMap>,
}

/// Header authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderAuth {
    /// The header that names the user.
    pub name: HeaderName,
    /// Where the user directory comes from.
    pub directory: HeaderDirectory,
    /// Peers whose header is believed; from anyone else it is as if absent.
    pub trusted_proxies: Vec<IpNet>,
}

/// The user directory of header authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderDirectory {
    /// One directory for everyone (`header_user_directory`).
    Static(String),
    /// Read from the header with a pattern (`header_user_directory_pattern`), `$ud` and
    /// `$id` around a literal separator.
    Pattern {
        /// The separator.
        separator: String,
        /// Whether the directory comes first (`$ud\$id`) or the id (`$id@$ud`).
        directory_first: bool,
    },
}

/// JWT authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtAuth {
    /// The PEM certificate or public key the tokens are signed for.
    pub certificate: PathBuf,
    /// The claim that holds the user id.
    pub user_id: String,
    /// Where the user directory comes from.
    pub directory: ClaimOrConstant,
    /// An audience `aud` must contain, if set.
    pub audience: Option<String>,
    /// Claims that become attributes.
    pub attributes: Vec<AttributeMap>,
}

/// A claim's name, or a constant (written `[ACME]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOrConstant {
    /// Read this claim.
    Claim(String),
    /// Always this value.
    Constant(String),
}

/// A claim that becomes attributes: one for a string, one per element of an array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeMap {
    /// The claim.
    pub claim: String,
    /// The attribute's key.
    pub attribute: String,
    /// Whether a token without the claim is refused.
    pub mandatory: bool,
}

/// The identity headers of Qlik (and what else a user name must not come from).
const NOT_A_USER_HEADER: &[&str] = &[
    "x-qlik-user",
    "x-qlik-security",
    "x-qlik-proxysession",
    "x-qlik-proxyid",
    "x-qlik-trace",
    "x-qlik-app",
    "x-qlik-capabilities",
    "x-qlik-virtual-proxy-prefix",
    "cookie",
    "authorization",
    "host",
];

/// `authentication` and the keys of its method; a key of another method is an error.
pub(super) fn validate(
    table: &str,
    vp: &VirtualProxyFile,
    base: &Path,
) -> Result<Authentication, ConfigError> {
    let at = |field: &str| format!("{table}.{field}");
    let header_keys = [
        ("header_name", vp.header_name.is_some()),
        ("header_user_directory", vp.header_user_directory.is_some()),
        (
            "header_user_directory_pattern",
            vp.header_user_directory_pattern.is_some(),
        ),
        (
            "header_trusted_proxies",
            vp.header_trusted_proxies.is_some(),
        ),
    ];
    let jwt_keys = [
        ("jwt_certificate", vp.jwt_certificate.is_some()),
        ("jwt_attribute_user_id", vp.jwt_attribute_user_id.is_some()),
        (
            "jwt_attribute_user_directory",
            vp.jwt_attribute_user_directory.is_some(),
        ),
        ("jwt_audience", vp.jwt_audience.is_some()),
        ("jwt_attribute_map", !vp.jwt_attribute_map.is_empty()),
    ];
    let oidc_keys = [
        (
            "oidc_configuration_endpoint",
            vp.oidc_configuration_endpoint.is_some(),
        ),
        ("oidc_client_id", vp.oidc_client_id.is_some()),
        ("oidc_client_secret", vp.oidc_client_secret.is_some()),
        ("oidc_realm", vp.oidc_realm.is_some()),
        ("oidc_scope", vp.oidc_scope.is_some()),
        ("oidc_attribute_sub", vp.oidc_attribute_sub.is_some()),
        ("oidc_attribute_name", vp.oidc_attribute_name.is_some()),
        ("oidc_attribute_groups", vp.oidc_attribute_groups.is_some()),
        ("oidc_attribute_email", vp.oidc_attribute_email.is_some()),
        ("oidc_attribute_map", !vp.oidc_attribute_map.is_empty()),
    ];
    let stray = |keys: &[(&str, bool)], method: &str| match keys.iter().find(|(_, set)| *set) {
        Some((key, _)) => Err(ConfigError::new(
            at(key),
            format!("only with authentication = \"{method}\""),
        )),
        None => Ok(()),
    };
    let required = |key: &str, value: &Option<String>| {
        value
            .clone()
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| ConfigError::new(at(key), "required by this authentication method"))
    };
    match vp.authentication {
        Method::Ticket => {
            stray(&header_keys, "header")?;
            stray(&jwt_keys, "jwt")?;
            stray(&oidc_keys, "oidc")?;
            Ok(Authentication::Ticket)
        }
        Method::Header => {
            stray(&jwt_keys, "jwt")?;
            stray(&oidc_keys, "oidc")?;
            let raw = required("header_name", &vp.header_name)?;
            let name = HeaderName::from_bytes(raw.trim().as_bytes()).map_err(|_| {
                ConfigError::new(at("header_name"), format!("{raw:?} is not a header name"))
            })?;
            if NOT_A_USER_HEADER.contains(&name.as_str()) {
                return Err(ConfigError::new(
                    at("header_name"),
                    format!("{raw:?} is a header the gateway or Qlik reserves"),
                ));
            }
            let directory =
                match (&vp.header_user_directory, &vp.header_user_directory_pattern) {
                    (Some(d), None) if !d.trim().is_empty() => {
                        HeaderDirectory::Static(d.trim().to_owned())
                    }
                    (None, Some(p)) => header_pattern(p)
                        .map_err(|m| ConfigError::new(at("header_user_directory_pattern"), m))?,
                    _ => return Err(ConfigError::new(
                        at("header_user_directory"),
                        "exactly one of header_user_directory and header_user_directory_pattern",
                    )),
                };
            let trusted_proxies = networks(
                &at("header_trusted_proxies"),
                vp.header_trusted_proxies.as_deref(),
            )?;
            Ok(Authentication::Header(HeaderAuth {
                name,
                directory,
                trusted_proxies,
            }))
        }
        Method::Jwt => {
            stray(&header_keys, "header")?;
            stray(&oidc_keys, "oidc")?;
            let certificate = base.join(required("jwt_certificate", &vp.jwt_certificate)?);
            let user_id = required("jwt_attribute_user_id", &vp.jwt_attribute_user_id)?;
            let directory = match vp.jwt_attribute_user_directory.as_deref().map(str::trim) {
                None | Some("") => {
                    return Err(ConfigError::new(
                        at("jwt_attribute_user_directory"),
                        "required: a claim, or a constant in brackets such as \"[ACME]\"",
                    ))
                }
                Some(c) => match c.strip_prefix('[').and_then(|c| c.strip_suffix(']')) {
                    Some(constant) => ClaimOrConstant::Constant(constant.to_owned()),
                    None => ClaimOrConstant::Claim(c.to_owned()),
                },
            };
            Ok(Authentication::Jwt(JwtAuth {
                certificate,
                user_id: user_id.trim().to_owned(),
                directory,
                audience: vp.jwt_audience.clone().filter(|a| !a.is_empty()),
                attributes: attribute_map(&vp.jwt_attribute_map),
            }))
        }
        Method::Oidc => {
            stray(&header_keys, "header")?;
            stray(&jwt_keys, "jwt")?;
            let endpoint = required(
                "oidc_configuration_endpoint",
                &vp.oidc_configuration_endpoint,
            )?;
            let configuration_endpoint = url::Url::parse(endpoint.trim())
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .filter(|u| {
                    u.query().is_none() && u.path().ends_with(super::OIDC_CONFIGURATION_SUFFIX)
                })
                .ok_or_else(|| {
                    ConfigError::new(
                        at("oidc_configuration_endpoint"),
                        format!(
                            "{endpoint:?} is not an http(s) URL ending with {}",
                            super::OIDC_CONFIGURATION_SUFFIX
                        ),
                    )
                })?;
            let claim = |key: &str, value: &Option<String>, default: &str| match value
                .as_deref()
                .map(str::trim)
            {
                None => Ok(default.to_owned()),
                Some("") => Err(ConfigError::new(at(key), "must name a claim")),
                Some(c) => Ok(c.to_owned()),
            };
            let scope = vp.oidc_scope.as_deref().unwrap_or(d::OIDC_SCOPE);
            let scopes = scope
                .split_whitespace()
                .filter(|s| *s != "openid")
                .map(str::to_owned)
                .collect();
            Ok(Authentication::Oidc(OidcAuth {
                configuration_endpoint,
                client_id: required("oidc_client_id", &vp.oidc_client_id)?
                    .trim()
                    .to_owned(),
                client_secret: required("oidc_client_secret", &vp.oidc_client_secret)?,
                realm: required("oidc_realm", &vp.oidc_realm)?.trim().to_owned(),
                scopes,
                sub: claim("oidc_attribute_sub", &vp.oidc_attribute_sub, "sub")?,
                name: claim("oidc_attribute_name", &vp.oidc_attribute_name, "name")?,
                groups: claim("oidc_attribute_groups", &vp.oidc_attribute_groups, "groups")?,
                email: claim("oidc_attribute_email", &vp.oidc_attribute_email, "email")?,
                attributes: attribute_map(&vp.oidc_attribute_map),
            }))
        }
    }
}

fn attribute_map(file: &[super::schema::AttributeMapFile]) -> Vec<AttributeMap> {
    file.iter()
        .map(|m| AttributeMap {
            claim: m.claim.clone(),
            attribute: m.attribute.clone(),
            mandatory: m.mandatory,
        })
        .collect()
}

/// `$ud<separator>$id` or `$id<separator>$ud`.
fn header_pattern(pattern: &str) -> Result<HeaderDirectory, String> {
    let bad = || format!("{pattern:?} must be $ud, a separator, $id (or $id, a separator, $ud)");
    let (first, rest) = pattern.split_at_checked(3).ok_or_else(bad)?;
    let (separator, last) = rest
        .split_at_checked(rest.len().saturating_sub(3))
        .ok_or_else(bad)?;
    let directory_first = match (first, last) {
        ("$ud", "$id") => true,
        ("$id", "$ud") => false,
        _ => return Err(bad()),
    };
    if separator.is_empty() || separator.contains('$') {
        return Err(bad());
    }
    Ok(HeaderDirectory::Pattern {
        separator: separator.to_owned(),
        directory_first,
    })
}

/// A list of addresses and CIDR ranges (`key`, loopback when unset): trusted portals,
/// trusted SSO proxies.
pub(super) fn networks(key: &str, raw: Option<&[String]>) -> Result<Vec<IpNet>, ConfigError> {
    let parse = |(i, raw): (usize, &str)| {
        let raw = raw.trim();
        raw.parse::<IpNet>()
            .or_else(|_| raw.parse::<std::net::IpAddr>().map(IpNet::from))
            .map_err(|_| {
                ConfigError::new(
                    format!("{key}[{i}]"),
                    format!("{raw:?} is not an address or CIDR range"),
                )
            })
    };
    match raw {
        Some(list) => list
            .iter()
            .map(String::as_str)
            .enumerate()
            .map(parse)
            .collect(),
        None => d::TRUSTED_IPS
            .iter()
            .copied()
            .enumerate()
            .map(parse)
            .collect(),
    }
}
