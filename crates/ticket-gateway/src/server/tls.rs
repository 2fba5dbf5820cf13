//! TLS on both listeners with rustls, and mutual TLS on the REST API as on a Qlik Sense
//! node's port 4243, where the client certificate is the caller's authorisation.
//!
//! `client_auth = "required"` fails the handshake for a caller without a certificate or
//! with one from another CA. `"optional-403"` completes every handshake and lets the
//! gateway answer `403` on such connections instead: friendlier for test set-ups, where a
//! failed handshake says little.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::ring;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;

use crate::config::{ClientAuthMode, ConfigError, Settings, TlsFiles};
use crate::conn::{ClientAuth, Side};

/// A listener's TLS set-up.
#[derive(Debug, Clone)]
pub(crate) struct Tls {
    /// The rustls configuration the acceptor uses.
    pub config: Arc<ServerConfig>,
    /// With `optional-403`: the real verifier, applied after the handshake.
    pub check_after_handshake: Option<Arc<dyn ClientCertVerifier>>,
    /// Whether clients are asked for a certificate at all.
    pub verifies_clients: bool,
}

/// The TLS set-up of both listeners, where they speak TLS.
#[derive(Debug, Default)]
pub(crate) struct Acceptors {
    frontend: Option<Tls>,
    api: Option<Tls>,
}

impl Acceptors {
    /// Reads the TLS files of both listeners; errors name the key of the offending file.
    pub(crate) fn load(settings: &Settings) -> Result<Acceptors, ConfigError> {
        let one = |table: &str, files: &Option<TlsFiles>| {
            files.as_ref().map(|f| load(table, f)).transpose()
        };
        Ok(Acceptors {
            frontend: one("frontend", &settings.frontend.tls)?,
            api: one("api", &settings.api.tls)?,
        })
    }

    /// The set-up of the listener on `side`, if it speaks TLS.
    pub(crate) fn get(&self, side: Side) -> Option<&Tls> {
        match side {
            Side::Frontend => self.frontend.as_ref(),
            Side::Api => self.api.as_ref(),
        }
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// Loads a listener's certificate chain, key, and client CA, if any. Errors name the key of
/// the offending file (`api.tls_cert`, …) in `table`, as configuration errors do.
pub(crate) fn load(table: &str, files: &TlsFiles) -> Result<Tls, ConfigError> {
    load_files(files).map_err(|(key, message)| ConfigError::new(format!("{table}.{key}"), message))
}

fn load_files(files: &TlsFiles) -> Result<Tls, (&'static str, String)> {
    let (cert, key) = (files.cert.as_path(), files.key.as_path());
    let client_ca = files.client_ca.as_deref().map(|ca| (ca, files.client_auth));
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| ("tls_cert", format!("{}: {e}", cert.display())))?;
    if chain.is_empty() {
        return Err((
            "tls_cert",
            format!("{}: no certificate in it", cert.display()),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| ("tls_key", format!("{}: {e}", key.display())))?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ("tls_cert", e.to_string()))?;
    let (builder, check_after_handshake) = match client_ca {
        None => (builder.with_no_client_auth(), None),
        Some((ca, mode)) => {
            let mut roots = RootCertStore::empty();
            let cas = CertificateDer::pem_file_iter(ca)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| ("client_ca", format!("{}: {e}", ca.display())))?;
            for c in cas {
                roots
                    .add(c)
                    .map_err(|e| ("client_ca", format!("{}: {e}", ca.display())))?;
            }
            if roots.is_empty() {
                return Err((
                    "client_ca",
                    format!("{}: no certificate in it", ca.display()),
                ));
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| ("client_ca", e.to_string()))?;
            match mode {
                ClientAuthMode::Required => (builder.with_client_cert_verifier(verifier), None),
                ClientAuthMode::Optional403 => {
                    let lenient = Arc::new(AcceptAnyCertificate {
                        inner: verifier.clone(),
                    });
                    (builder.with_client_cert_verifier(lenient), Some(verifier))
                }
            }
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        (
            "tls_key",
            format!("the key does not fit the certificate: {e}"),
        )
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Tls {
        config: Arc::new(config),
        check_after_handshake,
        verifies_clients: client_ca.is_some(),
    })
}

/// What the handshake of `conn` established, under `tls`.
pub(crate) fn client_auth(tls: &Tls, conn: &rustls::ServerConnection) -> ClientAuth {
    let Some(verifier) = &tls.check_after_handshake else {
        return if tls.verifies_clients {
            ClientAuth::Verified
        } else {
            ClientAuth::NotRequired
        };
    };
    match conn.peer_certificates() {
        Some([end_entity, intermediates @ ..]) => {
            match verifier.verify_client_cert(end_entity, intermediates, UnixTime::now()) {
                Ok(_) => ClientAuth::Verified,
                Err(_) => ClientAuth::Failed,
            }
        }
        _ => ClientAuth::Failed,
    }
}

/// Lets every handshake complete (the certificate's signature over the handshake is still
/// checked); the chain is judged after the handshake by the real verifier.
#[derive(Debug)]
struct AcceptAnyCertificate {
    inner: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for AcceptAnyCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
