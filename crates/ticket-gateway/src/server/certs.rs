//! `ticket-gateway certs`: a development certificate set under the names a Qlik Sense site
//! exports (`root.pem`, `server.pem`, `server_key.pem`, `client.pem`, `client_key.pem`), so
//! authentication modules written for a real site find what they expect.

use std::net::IpAddr;
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// Writes a root CA, a server certificate whose SANs cover every host in `hosts`, and a
/// client certificate with CN `QlikClient`, all signed by the root.
pub fn generate(out: &Path, hosts: &[String]) -> Result<Vec<String>, String> {
    if hosts.is_empty() {
        return Err("--hosts needs at least one host name or address".into());
    }
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let err = |e: rcgen::Error| e.to_string();

    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca.distinguished_name
        .push(DnType::CommonName, "ticket-gateway development root CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().map_err(err)?;
    let ca_cert = ca.self_signed(&ca_key).map_err(err)?;
    let issuer = Issuer::new(ca, ca_key);

    let mut server = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    for host in hosts {
        let san = match host.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(host.as_str().try_into().map_err(err)?),
        };
        server.subject_alt_names.push(san);
    }
    server
        .distinguished_name
        .push(DnType::CommonName, hosts[0].as_str());
    server.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.use_authority_key_identifier_extension = true;
    let server_key = KeyPair::generate().map_err(err)?;
    let server_cert = server.signed_by(&server_key, &issuer).map_err(err)?;

    let mut client = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    client
        .distinguished_name
        .push(DnType::CommonName, "QlikClient");
    client.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    client.use_authority_key_identifier_extension = true;
    let client_key = KeyPair::generate().map_err(err)?;
    let client_cert = client.signed_by(&client_key, &issuer).map_err(err)?;

    let files = [
        ("root.pem", ca_cert.pem()),
        ("server.pem", server_cert.pem()),
        ("server_key.pem", server_key.serialize_pem()),
        ("client.pem", client_cert.pem()),
        ("client_key.pem", client_key.serialize_pem()),
    ];
    let mut written = Vec::new();
    for (name, pem) in files {
        let path = out.join(name);
        std::fs::write(&path, pem).map_err(|e| format!("{}: {e}", path.display()))?;
        restrict(&path, name.ends_with("_key.pem"));
        written.push(path.display().to_string());
    }
    Ok(written)
}

/// Private keys are readable by their owner only.
fn restrict(path: &Path, secret: bool) {
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
    #[cfg(not(unix))]
    let _ = (path, secret);
}
