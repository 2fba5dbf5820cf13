//! What a Qlik Sense virtual proxy says on an engine WebSocket, in its own words: JSON-RPC
//! notifications (`{"jsonrpc":"2.0","method":…,"params":{…}}`) written by the proxy, not
//! by the engine behind it.

use serde::Serialize;
use ticket_core::EndReason;

use crate::proxy::sockets::Ending;
use crate::telemetry::clock::{self, Clock};

#[derive(Serialize)]
struct Notification<P> {
    jsonrpc: &'static str,
    method: &'static str,
    params: P,
}

fn notification(method: &'static str, params: impl Serialize) -> String {
    let n = Notification {
        jsonrpc: "2.0",
        method,
        params,
    };
    // A struct of strings and booleans: serializing cannot fail.
    serde_json::to_string(&n).unwrap_or_default()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Authenticated<'a> {
    user_id: &'a str,
    user_directory: &'a str,
    logout_uri: &'a str,
    must_authenticate: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MustAuthenticate<'a> {
    login_uri: &'a str,
    must_authenticate: bool,
}

#[derive(Serialize)]
struct Fatal<'a> {
    severity: &'static str,
    timestamp: &'a str,
    message: &'static str,
}

/// The greeting of a signed-in user's socket: `OnAuthenticationInformation`.
pub(crate) fn greeting(user_directory: &str, user_id: &str, logout_uri: &str) -> String {
    notification(
        "OnAuthenticationInformation",
        Authenticated {
            user_id,
            user_directory,
            logout_uri,
            must_authenticate: false,
        },
    )
}

/// What a socket without a session is told: where to log in.
pub(crate) fn must_authenticate(login_uri: &str) -> String {
    notification(
        "OnAuthenticationInformation",
        MustAuthenticate {
            login_uri,
            must_authenticate: true,
        },
    )
}

/// The fatal notification a socket gets before the gateway closes it, by why it ends.
pub(crate) fn farewell(why: Ending) -> Option<String> {
    let (method, message) = match why {
        Ending::Session(EndReason::LoggedOut) => ("OnSessionLoggedOut", "User logged out manually"),
        Ending::Session(EndReason::Closed | EndReason::Evicted) => {
            ("OnSessionClosed", "Session closed by server")
        }
        Ending::TimedOut => ("OnSessionTimedOut", "Session timed out due to inactivity"),
        Ending::Shutdown | Ending::Idle => return None,
    };
    Some(fatal(method, message))
}

/// What a socket whose ticket the per-user session limit refused is told.
pub(crate) fn max_parallel_sessions() -> String {
    fatal(
        "OnMaxParallelSessionsExceeded",
        "The maximum number of parallel sessions for the user has been exceeded",
    )
}

fn fatal(method: &'static str, message: &'static str) -> String {
    let mut timestamp = Vec::with_capacity(24);
    let nanos = Clock::new().second(clock::now(), &mut timestamp);
    clock::millis(nanos, &mut timestamp);
    notification(
        method,
        Fatal {
            severity: "fatal",
            timestamp: std::str::from_utf8(&timestamp).unwrap_or_default(),
            message,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_notifications_qlik_clients_read() {
        assert_eq!(
            greeting("ACME", "jdoe", "http://localhost:8080/ext/qps/user"),
            r#"{"jsonrpc":"2.0","method":"OnAuthenticationInformation","params":{"userId":"jdoe","userDirectory":"ACME","logoutUri":"http://localhost:8080/ext/qps/user","mustAuthenticate":false}}"#
        );
        let v: serde_json::Value =
            serde_json::from_str(&farewell(Ending::TimedOut).unwrap()).unwrap();
        assert_eq!(v["method"], "OnSessionTimedOut");
        assert_eq!(v["params"]["severity"], "fatal");
        let ts = v["params"]["timestamp"].as_str().unwrap();
        assert_eq!(ts.len(), 24, "{ts}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T', "{ts}");
        assert!(farewell(Ending::Shutdown).is_none());
    }
}
