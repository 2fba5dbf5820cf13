//! Every key name, built from the prefix (see the key layout in the module above).

/// Builds every key name from the prefix.
#[derive(Debug, Clone)]
pub(super) struct Keys {
    pub(super) prefix: String,
}

impl Keys {
    /// The prefix followed by `parts`, in one allocation (keys are built on every call).
    fn join(&self, parts: &[&str]) -> String {
        let len = self.prefix.len() + parts.iter().map(|p| p.len()).sum::<usize>();
        let mut key = String::with_capacity(len);
        key.push_str(&self.prefix);
        for part in parts {
            key.push_str(part);
        }
        key
    }

    pub(super) fn ticket(&self, id: &str) -> String {
        self.join(&["ticket:", id])
    }

    pub(super) fn target(&self, id: &str) -> String {
        self.join(&["target:", id])
    }

    pub(super) fn value(&self, key: &str) -> String {
        self.join(&["value:", key])
    }

    /// `P session:<realm>:`: a session's key is this followed by its id.
    pub(super) fn session_base(&self, realm: &str) -> String {
        self.join(&["session:", &escape(realm), ":"])
    }

    /// `P user:<realm>:`: a user's index is this followed by the user key.
    pub(super) fn user_base(&self, realm: &str) -> String {
        self.join(&["user:", &escape(realm), ":"])
    }

    pub(super) fn realm(&self, realm: &str) -> String {
        self.join(&["realm:", &escape(realm)])
    }

    pub(super) fn seq(&self) -> String {
        self.join(&["seq"])
    }

    /// `P session-ended`: the pub/sub channel of session-end events (a channel, not a key:
    /// it shares the prefix so that deployments sharing a server do not hear each other).
    pub(super) fn session_events(&self) -> String {
        self.join(&["session-ended"])
    }
}

/// Percent-escapes `%` and `:` so a realm is one unambiguous key segment.
fn escape(segment: &str) -> std::borrow::Cow<'_, str> {
    if segment.bytes().any(|b| b == b'%' || b == b':') {
        segment.replace('%', "%25").replace(':', "%3A").into()
    } else {
        segment.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys {
            prefix: "p:".into(),
        }
    }

    #[test]
    fn keys_follow_the_documented_layout() {
        let k = keys();
        assert_eq!(k.ticket("ABC"), "p:ticket:ABC");
        assert_eq!(k.target("g"), "p:target:g");
        assert_eq!(k.value("oidc:state:x"), "p:value:oidc:state:x");
        assert_eq!(k.session_base("qps/ext"), "p:session:qps/ext:");
        assert_eq!(k.user_base("qlikview"), "p:user:qlikview:");
        assert_eq!(k.realm("qps/"), "p:realm:qps/");
        assert_eq!(k.seq(), "p:seq");
        assert_eq!(k.session_events(), "p:session-ended");
    }

    #[test]
    fn a_realm_is_one_unambiguous_segment() {
        let k = keys();
        assert_eq!(k.session_base("a:b"), "p:session:a%3Ab:");
        assert_eq!(k.realm("50%:x"), "p:realm:50%25%3Ax");
        assert_ne!(
            format!("{}{}", k.session_base("a:b"), "c"),
            format!("{}{}", k.session_base("a"), "b:c")
        );
    }
}
