//! What a setting adds to responses: additional headers, and the CORS origins whose
//! requests get CORS headers.

use super::{ConfigError, Hosts};

/// `additional_response_headers`: valid names and values; the headers the gateway itself
/// must control (framing, cookies, CORS) are not for the setting.
pub(super) fn response_headers(
    key: &str,
    table: &std::collections::BTreeMap<String, String>,
) -> Result<http::HeaderMap, ConfigError> {
    const OURS: &[&str] = &[
        "content-length",
        "transfer-encoding",
        "connection",
        "set-cookie",
        "location",
        "upgrade",
        "access-control-allow-origin",
        "access-control-allow-credentials",
    ];
    let mut headers = http::HeaderMap::new();
    for (name, value) in table {
        let at = || format!("{key}.{name}");
        let header = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ConfigError::new(at(), "is not a header name"))?;
        if OURS.contains(&header.as_str()) {
            return Err(ConfigError::new(
                at(),
                "is a header the gateway sets itself",
            ));
        }
        let value = http::HeaderValue::from_str(value)
            .map_err(|_| ConfigError::new(at(), format!("{value:?} is not a header value")))?;
        headers.insert(header, value);
    }
    Ok(headers)
}

/// One CORS origin: `scheme://host[:port]` exactly as a browser sends it in `Origin`
/// (never `*`: a response with credentials must name its origin).
pub(super) fn cors_origin(raw: &str) -> Result<(http::HeaderValue, Hosts), String> {
    if raw.trim() == "*" {
        return Err(
            "\"*\" cannot be used: a browser sends its cookie only to a named origin".into(),
        );
    }
    let url = url::Url::parse(raw.trim())
        .map_err(|_| format!("{raw:?} is not an origin like \"https://mashup.example.com\""))?;
    let origin = url.origin();
    if !origin.is_tuple()
        || !matches!(url.scheme(), "http" | "https")
        || url.path() != "/"
        || url.query().is_some()
    {
        return Err(format!(
            "{raw:?} is not an origin like \"https://mashup.example.com\""
        ));
    }
    let text = origin.ascii_serialization();
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(80);
    let value =
        http::HeaderValue::from_str(&text).map_err(|_| format!("{raw:?} is not an origin"))?;
    Ok((value, Hosts::new([], &[format!("{host}:{port}")])))
}
