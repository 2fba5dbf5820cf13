//! JWT authentication: `Authorization: Bearer <JWT>` signed with the key of a PEM
//! certificate (as the QMC takes it) or public key, RS256, RS384 or RS512 only (Qlik's set).
//!
//! Verification is `jsonwebtoken`'s. The key is read from the certificate with
//! `rustls-webpki` and `rsa` (both well kept, and already there for TLS and JWS): the
//! certificate's SubjectPublicKeyInfo, decoded as an RSA key, given to `jsonwebtoken` as
//! PKCS#1. A key is always an RSA key, so no token can have it read as an HMAC secret.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rsa::pkcs1::EncodeRsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde_json::Value;

use super::claims::{self, Claims};
use ticket_core::Identity;

use crate::config::{ClaimOrConstant, ConfigError, JwtAuth};

/// Leeway on `exp` and `nbf`, for clocks that disagree a little.
const LEEWAY_SECONDS: u64 = 60;

/// A virtual proxy's JWT verifier, its key read once.
#[derive(Clone)]
pub(crate) struct Verifier {
    key: DecodingKey,
    validation: Validation,
    rules: JwtAuth,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

/// A verified token: who it is for, and until when (seconds since the epoch), if it says.
#[derive(Debug)]
pub(crate) struct Verified {
    pub(crate) identity: Identity,
    pub(crate) expires: Option<u64>,
}

impl Verifier {
    /// Reads the key of `rules.certificate`; `key` names the setting in errors.
    pub(crate) fn load(key: &str, rules: &JwtAuth) -> Result<Verifier, ConfigError> {
        let pem = std::fs::read(&rules.certificate)
            .map_err(|e| ConfigError::new(key, format!("{}: {e}", rules.certificate.display())))?;
        let decoding = decoding_key(&pem)
            .map_err(|m| ConfigError::new(key, format!("{}: {m}", rules.certificate.display())))?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.algorithms = vec![Algorithm::RS256, Algorithm::RS384, Algorithm::RS512];
        validation.leeway = LEEWAY_SECONDS;
        // A token without `exp` is accepted, as Qlik accepts it; one with it is checked.
        validation.required_spec_claims.clear();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        match &rules.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        Ok(Verifier {
            key: decoding,
            validation,
            rules: rules.clone(),
        })
    }

    /// Verifies `token` and reads its user; the error is a short reason for the `401`.
    pub(crate) fn verify(&self, token: &str) -> Result<Verified, &'static str> {
        use jsonwebtoken::errors::ErrorKind;
        let claims = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => "the token has expired",
                ErrorKind::ImmatureSignature => "the token is not valid yet",
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    "the token is not signed with RS256, RS384 or RS512"
                }
                ErrorKind::InvalidSignature => "the token's signature does not verify",
                ErrorKind::InvalidAudience => "the token is not for this audience",
                _ => "the token is malformed",
            })?
            .claims;
        let user_id =
            claims::text(&claims, &self.rules.user_id).ok_or("the token names no user")?;
        let user_directory = match &self.rules.directory {
            ClaimOrConstant::Constant(c) => c.clone(),
            ClaimOrConstant::Claim(name) => {
                claims::text(&claims, name).ok_or("the token names no user directory")?
            }
        };
        let mut attributes = Vec::new();
        claims::map_attributes(&claims, &self.rules.attributes, &mut attributes)?;
        Ok(Verified {
            identity: Identity::Qps {
                user_directory,
                user_id,
                attributes,
            },
            expires: claims.get("exp").and_then(Value::as_u64),
        })
    }
}

/// The RSA key of a PEM certificate, or of a PEM public key (`PUBLIC KEY` or
/// `RSA PUBLIC KEY`).
fn decoding_key(pem: &[u8]) -> Result<DecodingKey, String> {
    let text = std::str::from_utf8(pem).map_err(|_| "not a PEM file".to_owned())?;
    if !text.contains("-----BEGIN CERTIFICATE-----") {
        return DecodingKey::from_rsa_pem(pem).map_err(|e| format!("not an RSA public key: {e}"));
    }
    let der = CertificateDer::from_pem_slice(pem).map_err(|e| e.to_string())?;
    let cert =
        webpki::EndEntityCert::try_from(&der).map_err(|e| format!("not a certificate: {e}"))?;
    let spki = cert.subject_public_key_info();
    let key = rsa::RsaPublicKey::from_public_key_der(spki.as_ref())
        .map_err(|_| "the certificate's key is not an RSA key".to_owned())?;
    let pkcs1 = key.to_pkcs1_der().map_err(|e| e.to_string())?;
    Ok(DecodingKey::from_rsa_der(pkcs1.as_bytes()))
}
