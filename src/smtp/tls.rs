//! STARTTLS (RFC 3207) server configuration: certificate chain and key from PEM files, rustls
//! with the ring provider, swapped atomically on reload (SIGHUP) so new handshakes use the new
//! certificate while running sessions keep theirs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;
use tokio_rustls::TlsAcceptor;

/// A certificate or key problem: the operator's to fix.
#[derive(Debug, Error)]
pub enum TlsError {
    /// A PEM file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// No certificate in the chain file.
    #[error("{0}: no PEM certificate found")]
    NoCertificate(PathBuf),
    /// No private key in the key file.
    #[error("{0}: no PEM private key found")]
    NoKey(PathBuf),
    /// rustls refused the pair (key does not match, unsupported algorithm, …).
    #[error("certificate/key rejected: {0}")]
    Rejected(String),
}

fn read_pem(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Builds a rustls server config from a PEM chain and a PEM key (PKCS#8, PKCS#1 or SEC1).
pub fn load_server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let cert_pem = read_pem(cert)?;
    let key_pem = read_pem(key)?;
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|source| TlsError::Read {
            path: cert.to_path_buf(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(cert.to_path_buf()));
    }
    let key_der: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|source| TlsError::Read {
            path: key.to_path_buf(),
            source,
        })?
        .ok_or_else(|| TlsError::NoKey(key.to_path_buf()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rejected(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| TlsError::Rejected(e.to_string()))?;
    Ok(Arc::new(config))
}

/// The current acceptor, replaceable while the listener runs.
pub struct TlsHolder {
    cert: PathBuf,
    key: PathBuf,
    acceptor: RwLock<TlsAcceptor>,
}

impl TlsHolder {
    /// Loads the files once; an error here stops start-up.
    pub fn load(cert: &Path, key: &Path) -> Result<TlsHolder, TlsError> {
        let cfg = load_server_config(cert, key)?;
        Ok(TlsHolder {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            acceptor: RwLock::new(TlsAcceptor::from(cfg)),
        })
    }

    /// Re-reads the files. On error the old certificate stays in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        let cfg = load_server_config(&self.cert, &self.key)?;
        let mut a = self.acceptor.write().unwrap_or_else(|p| p.into_inner());
        *a = TlsAcceptor::from(cfg);
        Ok(())
    }

    /// The acceptor for a new handshake.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl std::fmt::Debug for TlsHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsHolder")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}
