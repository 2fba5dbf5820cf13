//! The OpenID Connect relying party of a virtual proxy: discovery, the authorization URL
//! (code flow, PKCE `S256`, state and nonce), the code exchange and the ID token's
//! verification. HTTP handling is [`crate::qps::oidc`]'s; this module speaks to the
//! provider only.
//!
//! The flow and JOSE are `openidconnect`'s, over `reqwest` with rustls (the system's
//! roots and Mozilla's), redirects off (a provider's back channel never redirects, and
//! following one would let a provider point the gateway anywhere). What the crate leaves
//! to its user is done here:
//!
//! - Discovery happens at start-up and, while it fails, again in the background and on
//!   demand (at most once a second); until it succeeds logins answer `503`.
//! - The key set is fetched again when a token names a key it does not hold (a provider
//!   rotated its keys), at most once every [`JWKS_REFRESH_INTERVAL`].
//! - `exp` gets [`LEEWAY`], for clocks that disagree a little.
//! - Claims are read from the verified token's payload as JSON, so that any claim (a
//!   standard one such as `preferred_username` as well as `groups`) can name the user or
//!   an attribute.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use base64::Engine;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreClientAuthMethod, CoreIdToken, CoreProviderMetadata,
};
use openidconnect::{
    reqwest, AuthType, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret,
    CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope, SignatureVerificationError,
    TokenResponse,
};
use ticket_core::Identity;
use tokio::time::Instant;

use super::claims::{self, Claims};
use crate::config::{OidcAuth, OIDC_CONFIGURATION_SUFFIX as CONFIGURATION_SUFFIX};

/// Leeway on the ID token's `exp`.
const LEEWAY: Duration = Duration::from_secs(60);
/// The least time between two fetches of the key set for an unknown key.
const JWKS_REFRESH_INTERVAL: Duration = Duration::from_secs(10);
/// The least time between two discovery attempts made for requests.
const DISCOVERY_RETRY: Duration = Duration::from_secs(1);
/// The longest wait between two background discovery attempts.
const DISCOVERY_BACKOFF_MAX: Duration = Duration::from_secs(30);

type Discovered = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Why a login could not finish.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The provider cannot be reached (or has not been discovered yet): `503`.
    Unreachable(String),
    /// The provider or the token refused the login, for this reason: `401`.
    Refused(&'static str),
}

/// A login begun: the URL to send the browser to, and what its callback needs.
#[derive(Debug)]
pub(crate) struct Begun {
    pub(crate) url: String,
    pub(crate) state: String,
    pub(crate) nonce: String,
    pub(crate) verifier: String,
}

/// A virtual proxy's provider.
pub(crate) struct Provider {
    rules: OidcAuth,
    issuer: IssuerUrl,
    redirect_uri: RedirectUrl,
    http: reqwest::Client,
    client: RwLock<Option<Arc<Discovered>>>,
    /// Held while discovering, so that concurrent requests make one attempt.
    discovering: tokio::sync::Mutex<Option<Instant>>,
    jwks_fetched: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("issuer", &self.issuer.as_str())
            .field("client_id", &self.rules.client_id)
            .field("ready", &self.is_ready())
            .finish_non_exhaustive()
    }
}

impl Provider {
    /// A provider for `rules`, whose callback is `redirect_uri`; nothing is fetched yet.
    /// `timeout` bounds each request to the provider.
    pub(crate) fn new(
        rules: &OidcAuth,
        redirect_uri: &str,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Provider, String> {
        let endpoint = rules.configuration_endpoint.as_str();
        let issuer = endpoint
            .strip_suffix(CONFIGURATION_SUFFIX)
            .ok_or_else(|| format!("{endpoint:?} does not end with {CONFIGURATION_SUFFIX}"))?;
        let http = reqwest::ClientBuilder::new()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Provider {
            rules: rules.clone(),
            issuer: IssuerUrl::new(issuer.to_owned()).map_err(|e| e.to_string())?,
            redirect_uri: RedirectUrl::new(redirect_uri.to_owned()).map_err(|e| e.to_string())?,
            http,
            client: RwLock::new(None),
            discovering: tokio::sync::Mutex::new(None),
            jwks_fetched: Mutex::new(None),
        })
    }

    /// Whether discovery has succeeded.
    pub(crate) fn is_ready(&self) -> bool {
        self.current().is_some()
    }

    /// The issuer, for logs and readiness.
    pub(crate) fn issuer(&self) -> &str {
        self.issuer.as_str()
    }

    fn current(&self) -> Option<Arc<Discovered>> {
        match self.client.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn replace(&self, client: Discovered) -> Arc<Discovered> {
        let client = Arc::new(client);
        match self.client.write() {
            Ok(mut c) => *c = Some(client.clone()),
            Err(poisoned) => *poisoned.into_inner() = Some(client.clone()),
        }
        client
    }

    /// Discovers the provider in the background until it succeeds, waiting longer after
    /// each failure.
    pub(crate) fn discover_in_background(self: &Arc<Self>) {
        let provider = self.clone();
        tokio::spawn(async move {
            let mut wait = DISCOVERY_RETRY;
            loop {
                match provider.discover(true).await {
                    Ok(_) => return,
                    Err(e) => tracing::warn!(
                        issuer = provider.issuer(),
                        error = %e,
                        retry_in_seconds = wait.as_secs(),
                        "OpenID provider not discovered"
                    ),
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(DISCOVERY_BACKOFF_MAX);
            }
        });
    }

    /// The discovered client; discovers now if that has not happened yet (at most once per
    /// [`DISCOVERY_RETRY`] unless `always`).
    async fn discover(&self, always: bool) -> Result<Arc<Discovered>, String> {
        if let Some(c) = self.current() {
            return Ok(c);
        }
        let mut last = self.discovering.lock().await;
        if let Some(c) = self.current() {
            return Ok(c);
        }
        if !always && last.is_some_and(|t| t.elapsed() < DISCOVERY_RETRY) {
            return Err("the OpenID provider has not been discovered yet".to_owned());
        }
        *last = Some(Instant::now());
        let client = self.fetch().await?;
        tracing::info!(issuer = self.issuer(), "OpenID provider discovered");
        Ok(client)
    }

    /// Reads the provider's configuration and key set, and makes the client of them.
    async fn fetch(&self) -> Result<Arc<Discovered>, String> {
        let metadata = CoreProviderMetadata::discover_async(self.issuer.clone(), &self.http)
            .await
            .map_err(|e| chain(&e))?;
        Ok(self.replace(self.client_for(metadata)?))
    }

    fn client_for(&self, metadata: CoreProviderMetadata) -> Result<Discovered, String> {
        // client_secret_basic unless the provider offers only client_secret_post (absent
        // means basic, OpenID Connect Discovery §3).
        let auth = match metadata.token_endpoint_auth_methods_supported() {
            None => AuthType::BasicAuth,
            Some(m) if m.contains(&CoreClientAuthMethod::ClientSecretBasic) => AuthType::BasicAuth,
            Some(m) if m.contains(&CoreClientAuthMethod::ClientSecretPost) => AuthType::RequestBody,
            Some(_) => {
                return Err(
                    "the provider offers neither client_secret_basic nor client_secret_post"
                        .to_owned(),
                )
            }
        };
        if metadata.token_endpoint().is_none() {
            return Err("the provider's configuration names no token endpoint".to_owned());
        }
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.rules.client_id.clone()),
            Some(ClientSecret::new(self.rules.client_secret.clone())),
        )
        .set_auth_type(auth)
        .set_redirect_uri(self.redirect_uri.clone()))
    }

    /// Begins a login: a fresh state, nonce and PKCE verifier, and the authorization URL.
    pub(crate) async fn begin(&self) -> Result<Begun, Failure> {
        let client = self.discover(false).await.map_err(Failure::Unreachable)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in &self.rules.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        Ok(Begun {
            url: url.into(),
            state: state.into_secret(),
            nonce: nonce.secret().clone(),
            verifier: verifier.into_secret(),
        })
    }

    /// Finishes a login: exchanges `code` (with the PKCE `verifier`), verifies the ID token
    /// against `nonce`, and reads the user from it.
    pub(crate) async fn finish(
        &self,
        code: &str,
        nonce: &str,
        verifier: &str,
    ) -> Result<Identity, Failure> {
        let client = self.discover(false).await.map_err(Failure::Unreachable)?;
        let exchange = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|_| Failure::Refused("the provider names no token endpoint"))?
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()));
        let tokens = exchange
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::Request(e) => Failure::Unreachable(chain(&e)),
                RequestTokenError::ServerResponse(_) => {
                    Failure::Refused("the provider refused the authorization code")
                }
                _ => Failure::Refused("the provider's token response could not be read"),
            })?;
        let id_token = tokens
            .id_token()
            .ok_or(Failure::Refused("the provider sent no ID token"))?;
        let nonce = Nonce::new(nonce.to_owned());
        match self.verify(&client, id_token, &nonce) {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                let client = self.refresh_keys().await?;
                self.verify(&client, id_token, &nonce)
            }
            other => other,
        }
        .map_err(|e| Failure::Refused(refusal(&e)))?;
        self.identity(id_token)
    }

    fn verify(
        &self,
        client: &Discovered,
        id_token: &CoreIdToken,
        nonce: &Nonce,
    ) -> Result<(), ClaimsVerificationError> {
        let verifier = client.id_token_verifier().set_time_fn(|| {
            chrono::Utc::now() - chrono::Duration::seconds(LEEWAY.as_secs() as i64)
        });
        id_token.claims(&verifier, nonce).map(drop)
    }

    /// Fetches the key set again (a token named a key it lacks), unless that was done
    /// lately; the client with the fresh keys.
    async fn refresh_keys(&self) -> Result<Arc<Discovered>, Failure> {
        let unknown =
            Failure::Refused("the ID token is signed with a key the provider does not publish");
        {
            let mut fetched = self.jwks_fetched.lock().unwrap_or_else(|p| p.into_inner());
            if fetched.is_some_and(|t| t.elapsed() < JWKS_REFRESH_INTERVAL) {
                return Err(unknown);
            }
            *fetched = Some(Instant::now());
        }
        // Discovery reads the key set afresh, and whatever else the provider changed.
        let fresh = self.fetch().await.map_err(Failure::Unreachable)?;
        tracing::info!(issuer = self.issuer(), "OpenID provider keys fetched again");
        Ok(fresh)
    }

    /// The user a verified ID token names.
    fn identity(&self, id_token: &CoreIdToken) -> Result<Identity, Failure> {
        let claims = payload(id_token).ok_or(Failure::Refused("the ID token could not be read"))?;
        let rules = &self.rules;
        let user_id = claims::text(&claims, &rules.sub)
            .ok_or(Failure::Refused("the ID token names no user"))?;
        let mut attributes = Vec::new();
        if let Some(name) = claims::text(&claims, &rules.name) {
            attributes.push(("name".to_owned(), name));
        }
        if let Some(email) = claims::text(&claims, &rules.email) {
            attributes.push(("email".to_owned(), email));
        }
        attributes.extend(
            claims::values(&claims, &rules.groups)
                .into_iter()
                .map(|g| ("Group".to_owned(), g)),
        );
        claims::map_attributes(&claims, &rules.attributes, &mut attributes)
            .map_err(Failure::Refused)?;
        Ok(Identity::Qps {
            user_directory: rules.realm.clone(),
            user_id,
            attributes,
        })
    }
}

/// The claims of a token already verified: its payload as JSON.
fn payload(id_token: &CoreIdToken) -> Option<Claims> {
    let compact = id_token.to_string();
    let payload = compact.split('.').nth(1)?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&json).ok()
}

/// What a refused ID token is told: the check that failed, never the token.
fn refusal(e: &ClaimsVerificationError) -> &'static str {
    match e {
        ClaimsVerificationError::Expired(_) => "the ID token has expired",
        ClaimsVerificationError::InvalidAudience(_) => "the ID token is for another client",
        ClaimsVerificationError::InvalidIssuer(_) => "the ID token is from another issuer",
        ClaimsVerificationError::InvalidNonce(_) => "the ID token's nonce does not match the login",
        ClaimsVerificationError::SignatureVerification(
            SignatureVerificationError::NoMatchingKey,
        ) => "the ID token is signed with a key the provider does not publish",
        ClaimsVerificationError::SignatureVerification(_) => {
            "the ID token's signature does not verify"
        }
        _ => "the ID token is not valid",
    }
}

/// An error and its causes, on one line (reqwest's own message rarely says which).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
