//! The rustls configuration of `https://` and `wss://` clients: aws-lc-rs
//! as the crypto provider, the system's roots, and the application's CA.

use crate::RpcError;
use std::sync::Arc;

/// A client configuration trusting the system's roots and the
/// certificates of `extra_pem`.
pub(crate) fn client_config(
    extra_pem: Option<&str>,
) -> Result<Arc<rustls::ClientConfig>, RpcError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let failed = |what: &str, error: &dyn std::fmt::Display| {
        RpcError::new(500, format!("TLS configuration: {what}: {error}"))
    };
    let mut roots = rustls::RootCertStore::empty();
    // Certificates the system has that rustls cannot read are skipped.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(pem) = extra_pem {
        for certificate in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let certificate = certificate.map_err(|error| failed("the CA is not PEM", &error))?;
            roots
                .add(certificate)
                .map_err(|error| failed("the CA is not a certificate", &error))?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| failed("protocol versions", &error))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
