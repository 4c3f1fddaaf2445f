//! HTTPS served by the server itself (rustls, ring): certificate chain and key from PEM files,
//! read again on SIGHUP so a renewed certificate (e.g. by certbot) takes effect without a
//! restart. The alternative, a reverse proxy in front, is in `docs/server.md`.

use std::path::Path;
use std::sync::Arc;

use axum_server::tls_rustls::RustlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::Config;
use crate::error::ServerError;

/// The rustls configuration of a certificate chain and key (PEM files). HTTP/1.1 only (ALPN):
/// the server's slow-client timeouts are those of HTTP/1.
fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("certificate {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("key {}: {e}", key.display()))?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key do not go together: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Reads the certificate and key.
pub async fn load(cert: &Path, key: &Path) -> Result<RustlsConfig, ServerError> {
    // One process-wide provider: ring, as the client's reqwest uses.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = server_config(cert, key).map_err(|e| ServerError::Startup(format!("HTTPS: {e}")))?;
    Ok(RustlsConfig::from_config(config))
}

/// Reloads the certificate and key on every SIGHUP; a failed reload keeps the previous pair.
pub fn reload_on_hangup(tls: RustlsConfig, config: &Config) {
    #[cfg(unix)]
    {
        let (Some(cert), Some(key)) = (config.tls_cert.clone(), config.tls_key.clone()) else {
            return;
        };
        tokio::spawn(async move {
            let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                tracing::warn!("cannot listen for SIGHUP; the TLS certificate is not reloaded");
                return;
            };
            while hangups.recv().await.is_some() {
                match server_config(&cert, &key) {
                    Ok(config) => {
                        tls.reload_from_config(config);
                        tracing::info!(cert = %cert.display(), "TLS certificate reloaded");
                    }
                    Err(e) => tracing::error!(
                        cert = %cert.display(),
                        error = %e,
                        "TLS certificate not reloaded; the previous one stays in use"
                    ),
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = (tls, config);
}
