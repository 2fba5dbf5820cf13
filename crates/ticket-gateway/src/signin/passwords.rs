//! The users file: who may sign in with a password, for the demo authentication module
//! (`[demo] users_file`) and QlikView's form login (`[qlikview] users_file`).
//!
//! ```toml
//! [users]
//! 'ACME\jdoe' = { password = "$argon2id$v=19$m=19456,t=2,p=1$…", attributes = [{ Group = "Sales" }] }
//! ```
//!
//! Passwords are kept as Argon2 hashes (PHC strings; `ticket-gateway hash-password` makes
//! one). A login that fails costs the same whether the user exists or not (an unknown user
//! is checked against a hash of its own), says the same, and is slowed: each failure for a
//! name doubles the wait before the next answer for it, up to [`MAX_DELAY`]; a success
//! clears it. A wait, never a lock-out, so nobody can lock a user out by failing for them.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::Deserialize;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::datafile;

/// The wait after a first failure; each further one doubles it.
const FIRST_DELAY: Duration = Duration::from_millis(250);
/// The longest wait.
const MAX_DELAY: Duration = Duration::from_secs(4);
/// Failures older than this are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Names whose failures are remembered at once; past it, the oldest are forgotten.
const MAX_REMEMBERED: usize = 10_000;
/// Password checks at once: each is tens of milliseconds of a core.
const CONCURRENT_CHECKS: usize = 2;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    users: BTreeMap<String, UserFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserFile {
    password: String,
    #[serde(default)]
    attributes: Vec<BTreeMap<String, String>>,
}

/// A user of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct User {
    /// The name as the file writes it (`ACME\jdoe`).
    pub(crate) name: String,
    /// Attributes in file order.
    pub(crate) attributes: Vec<(String, String)>,
    hash: String,
}

/// The users of a file, and what failed logins have earned.
#[derive(Debug)]
pub(crate) struct Users {
    /// By name, lowercased: names compare in any casing, as Windows accounts do.
    users: HashMap<String, User>,
    /// Checked for unknown names, so they cost what known ones do.
    decoy: String,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
    checks: Arc<Semaphore>,
}

impl Users {
    /// Reads a users file; the error names the file and the line.
    pub(crate) fn load(path: &Path) -> Result<Users, String> {
        datafile::load(path, Users::parse)
    }

    /// Parses a users file.
    pub(crate) fn parse(text: &str) -> Result<Users, String> {
        let file: File = datafile::parse(text)?;
        let mut users = HashMap::new();
        for (name, user) in file.users {
            PasswordHash::new(&user.password).map_err(|_| {
                format!("{name}: password is not a PHC hash (use ticket-gateway hash-password)")
            })?;
            let attributes = user.attributes.into_iter().flatten().collect();
            let key = name.trim().to_lowercase();
            users.insert(
                key,
                User {
                    name: name.trim().to_owned(),
                    attributes,
                    hash: user.password,
                },
            );
        }
        Ok(Users {
            users,
            decoy: hash(&ticket_core::id::guid()),
            failures: Mutex::default(),
            checks: Arc::new(Semaphore::new(CONCURRENT_CHECKS)),
        })
    }

    /// The user `name` if `password` is theirs. A failure answers late, the later the more
    /// it has failed for that name lately.
    pub(crate) async fn check(&self, name: &str, password: &str) -> Option<User> {
        let key = name.trim().to_lowercase();
        let user = self.users.get(&key);
        let hash = user.map_or(self.decoy.clone(), |u| u.hash.clone());
        let password = password.to_owned();
        let ok = {
            let _permit = self.checks.acquire().await.ok()?;
            tokio::task::spawn_blocking(move || verify(&password, &hash))
                .await
                .unwrap_or(false)
        };
        match user.filter(|_| ok) {
            Some(user) => {
                self.lock().remove(&key);
                Some(user.clone())
            }
            None => {
                tokio::time::sleep(self.failed(key)).await;
                None
            }
        }
    }

    /// Records a failure for `key` and returns the wait it earns.
    fn failed(&self, key: String) -> Duration {
        let now = Instant::now();
        let mut failures = self.lock();
        if failures.len() >= MAX_REMEMBERED {
            failures.retain(|_, (_, at)| now.duration_since(*at) < FORGET_AFTER);
            if failures.len() >= MAX_REMEMBERED {
                failures.clear();
            }
        }
        let entry = failures.entry(key).or_insert((0, now));
        if now.duration_since(entry.1) >= FORGET_AFTER {
            *entry = (0, now);
        }
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
        let doublings = entry.0.saturating_sub(1).min(16);
        (FIRST_DELAY * 2u32.saturating_pow(doublings)).min(MAX_DELAY)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u32, Instant)>> {
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An Argon2id hash of `password` with a fresh salt, as a PHC string.
pub(crate) fn hash(password: &str) -> String {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .unwrap_or_default()
}

fn verify(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> Users {
        let text = format!(
            "[users]\n'ACME\\jdoe' = {{ password = \"{}\", attributes = [{{ Group = \"Sales\" }}, {{ Group = \"EU\" }}] }}\n",
            hash("s3cret")
        );
        Users::parse(&text).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn the_right_password_signs_in_and_failures_are_slowed_more_and_more() {
        let u = users();
        let ok = u.check("acme\\JDOE", "s3cret").await.unwrap();
        assert_eq!(ok.name, "ACME\\jdoe");
        assert_eq!(
            ok.attributes,
            [
                ("Group".into(), "Sales".into()),
                ("Group".into(), "EU".into())
            ]
        );
        let mut waits = Vec::new();
        for _ in 0..6 {
            let started = Instant::now();
            assert!(u.check("ACME\\jdoe", "wrong").await.is_none());
            waits.push(started.elapsed());
        }
        assert!(waits.windows(2).all(|w| w[1] >= w[0]), "{waits:?}");
        assert!(waits[0] >= FIRST_DELAY && waits[5] <= MAX_DELAY + Duration::from_secs(1));
        // Never a lock-out: the right password still works, and clears the wait.
        assert!(u.check("ACME\\jdoe", "s3cret").await.is_some());
        let started = Instant::now();
        assert!(u.check("ACME\\jdoe", "wrong").await.is_none());
        assert!(started.elapsed() < FIRST_DELAY * 2);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unknown_user_fails_like_a_wrong_password() {
        let u = users();
        assert!(u.check("nobody", "s3cret").await.is_none());
    }

    #[test]
    fn a_bad_file_names_the_line_and_plain_passwords_are_refused() {
        let e = Users::parse("[users]\nbob = { password = \"plain\" }\n").unwrap_err();
        assert!(e.contains("bob") && e.contains("hash-password"), "{e}");
        let e = Users::parse("[users]\nbob = 5\n").unwrap_err();
        assert!(e.starts_with("line 2"), "{e}");
    }
}
