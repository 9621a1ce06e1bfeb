//! The TLS client configuration of everything the server dials: rustls
//! on the ring provider, trusting the system's roots and, for a private
//! CA, the certificates of a PEM file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Why a TLS client configuration could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("ca_file {}: {source}", path.display())]
    CaFile {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("ca_file {}: no PEM certificate in it", .0.display())]
    NoCertificate(PathBuf),
    #[error("TLS set-up: {0}")]
    Config(#[from] rustls::Error),
}

/// A TLS client configuration trusting the system's roots and those of
/// `ca_file`.
pub fn client_tls(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    // Certificates the system holds that rustls cannot parse are left out,
    // as every TLS client does; a connection needing one fails to verify.
    let _ = roots.add_parsable_certificates(native.certs);
    if let Some(path) = ca_file {
        let _ = roots.add_parsable_certificates(ca_certificates(path)?);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// Checks that `path` is a PEM file holding at least one certificate,
/// as a connection's `ca_file` must be.
pub fn check_ca_file(path: &Path) -> Result<(), TlsError> {
    if ca_certificates(path)?.is_empty() {
        return Err(TlsError::NoCertificate(path.to_path_buf()));
    }
    Ok(())
}

/// The certificates of a PEM file.
pub fn ca_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let fail = |source| TlsError::CaFile {
        path: path.to_path_buf(),
        source,
    };
    CertificateDer::pem_file_iter(path)
        .map_err(fail)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(fail)
}
