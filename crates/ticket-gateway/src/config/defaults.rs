//! Every default of the configuration, in one place. Values the ticket core shares (ticket
//! and target lifetimes, the Redis key prefix, URL and timeout) come from
//! [`ticket_core::defaults`], so the two crates cannot disagree.

use std::time::Duration;

/// Address of the browser-facing listener.
pub const FRONTEND_LISTEN: &str = "127.0.0.1:8080";
/// Public base URL of the browser-facing listener.
pub const FRONTEND_URL: &str = "http://localhost:8080";
/// Address of the QPS REST API listener.
pub const API_LISTEN: &str = "127.0.0.1:4243";
/// Public base URL of the QPS REST API listener.
pub const API_URL: &str = "http://localhost:4243";
/// Ticket lifetime: Qlik documents one minute.
pub const TICKET_TTL: Duration = ticket_core::defaults::TICKET_TTL;
/// Lifetime of a target id.
pub const TARGET_ID_TTL: Duration = ticket_core::defaults::TARGET_ID_TTL;
/// Session inactivity timeout in minutes, as on a fresh Qlik Sense virtual proxy.
pub const INACTIVITY_MINUTES: u64 = 30;
/// Session cookie of the default virtual proxy on a fresh Qlik Sense install.
pub const COOKIE_NAME: &str = "X-Qlik-Session";
/// Suffix Qlik Sense adds to the session cookie name over plain http.
pub const HTTP_COOKIE_SUFFIX: &str = "-HTTP";
/// Cap on live sessions per user and virtual proxy, as Qlik Sense enforces.
pub const MAX_SESSIONS_PER_USER: usize = 5;
/// Limit on request bodies read by the ticket and session endpoints.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Time a client has to send its request headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Limit on a request head, as on a Qlik Sense proxy (`maxHeaderSizeBytes`).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Limit on header lines, as on a Qlik Sense proxy (`maxHeaderLines`).
pub const MAX_HEADERS: usize = 100;
/// Keep-alive idle timeout, as on a Qlik Sense proxy (`keepAliveTimeoutSeconds`).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a request body has to arrive, beyond what its size earns.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes per second that earn a request body one more second: a slow mobile upload sends
/// more, a body trickled to hold a connection less.
pub const BODY_MIN_RATE: u64 = 1024;
/// A WebSocket with no frame either way this long is closed: longer than the session
/// inactivity timeout, so that a session always ends first.
pub const WEBSOCKET_IDLE_TIMEOUT: Duration = Duration::from_secs(60 * 60);
/// Cap on open connections over both listeners.
pub const MAX_CONNECTIONS: usize = 10_000;
/// Time in-flight requests get to finish on shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Time to connect to a back end.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time a back end has to send its response headers.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);
/// Redis URL.
pub const REDIS_URL: &str = ticket_core::defaults::REDIS_URL;
/// Prefix of Redis keys.
pub const REDIS_KEY_PREFIX: &str = ticket_core::defaults::REDIS_KEY_PREFIX;
/// Bound on one store operation.
pub const STORE_TIMEOUT: Duration = ticket_core::defaults::STORE_TIMEOUT;
/// Callers trusted to ask for QlikView web tickets: the loopback addresses.
pub const TRUSTED_IPS: &[&str] = &["127.0.0.1", "::1"];
/// The QlikView session cookie AccessPoint uses.
pub const QLIKVIEW_COOKIE: &str = "AccessPointSession";
/// Status of an "Invalid call" refusal: QlikView answers it with `200`.
pub const INVALID_CALL_STATUS: u16 = 200;
/// What an untrusted caller of GetWebTicket gets: every known client parser reads it as a
/// failure.
pub const INVALID_CALL_BODY: &str = "<Global><_retval_>Invalid call</_retval_></Global>";
/// The QlikView web server's header-authentication header.
pub const QV_USER_HEADER: &str = "QVUSER";
/// The prefix QlikView puts before header-authenticated user names.
pub const QV_USER_PREFIX: &str = "CUSTOM\\";

/// The scopes an OpenID Connect proxy asks for (`oidc_scope`).
pub const OIDC_SCOPE: &str = "openid profile email";
