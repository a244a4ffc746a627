//! TLS pieces shared by the HTTP and TCP probes: the rustls client configuration and the
//! reading of a leaf certificate's expiry.
//!
//! The crypto provider (aws-lc-rs) is named explicitly rather than taken from a process-wide
//! default, so a probe behaves the same whatever else in the process installed one.
//! May use `model`.

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use rustls::{
    ClientConfig, DigitallySignedStruct, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{CryptoProvider, WebPkiSupportedAlgorithms},
    pki_types::{CertificateDer, ServerName, UnixTime},
};

use crate::model::CertStatus;

/// Seconds in a day, for `days_left`.
const SECONDS_PER_DAY: i64 = 86_400;

/// The crypto provider every probe uses.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A client configuration for a probe.
///
/// With `verify`, certificates are checked against the platform's trust store (system roots on
/// Linux) and the host name. Without it, any certificate is accepted but the handshake is still
/// completed, with its signatures checked, so the leaf's expiry can be read and reported.
/// `alpn` lists the application protocols to offer (empty for raw TCP).
pub(crate) fn client_config(verify: bool, alpn: &[&[u8]]) -> Result<ClientConfig, rustls::Error> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous();
    let builder = if verify {
        let verifier = rustls_platform_verifier::Verifier::new(provider)?;
        builder.with_custom_certificate_verifier(Arc::new(verifier))
    } else {
        builder.with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate {
            algorithms: provider.signature_verification_algorithms,
        }))
    };
    let mut config = builder.with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// Accepts any certificate chain for any name (`tls_verify = false`), while still verifying the
/// handshake signatures: the peer must hold the key of the certificate it shows, so what we
/// report about that certificate is about the server we talked to.
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The expiry facts of a DER leaf certificate, measured from now; `None` when the certificate
/// cannot be parsed (the check itself already passed or failed on its own merits).
pub(crate) fn cert_status(leaf_der: &[u8], warn: Duration) -> Option<CertStatus> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
    cert_status_at(leaf_der, warn, i64::try_from(now.as_secs()).ok()?)
}

/// [`cert_status`] at a given Unix time, so tests need not race the clock.
fn cert_status_at(leaf_der: &[u8], warn: Duration, now_unix: i64) -> Option<CertStatus> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf_der).ok()?;
    let not_after = cert.validity().not_after.timestamp();
    let seconds_left = not_after.saturating_sub(now_unix);
    let warn = i64::try_from(warn.as_secs()).unwrap_or(i64::MAX);
    Some(CertStatus {
        // Rounded down, so a certificate that expired an hour ago already shows -1.
        days_left: seconds_left.div_euclid(SECONDS_PER_DAY),
        expiring: seconds_left < warn,
        not_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate whose `notAfter` is `not_after` (Unix seconds), as DER.
    fn cert_expiring_at(not_after: i64) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        let at = UNIX_EPOCH + Duration::from_secs(u64::try_from(not_after).expect("positive"));
        params.not_before = (at - Duration::from_secs(400 * 86_400)).into();
        params.not_after = at.into();
        params.self_signed(&key).expect("cert").der().to_vec()
    }

    const NOW: i64 = 1_800_000_000;
    const DAY: i64 = SECONDS_PER_DAY;
    const WARN: Duration = Duration::from_secs(14 * 86_400);

    #[test]
    fn whole_days_left_and_expiring_flag() {
        let der = cert_expiring_at(NOW + 3 * DAY - 60);
        assert_eq!(
            cert_status_at(&der, WARN, NOW),
            Some(CertStatus {
                days_left: 2,
                expiring: true,
                not_after: NOW + 3 * DAY - 60,
            })
        );
        let der = cert_expiring_at(NOW + 400 * DAY);
        assert_eq!(
            cert_status_at(&der, WARN, NOW),
            Some(CertStatus {
                days_left: 400,
                expiring: false,
                not_after: NOW + 400 * DAY,
            })
        );
    }

    #[test]
    fn expired_certificates_have_negative_days() {
        let der = cert_expiring_at(NOW - 3600);
        assert_eq!(
            cert_status_at(&der, WARN, NOW),
            Some(CertStatus {
                days_left: -1,
                expiring: true,
                not_after: NOW - 3600,
            })
        );
    }

    #[test]
    fn warn_boundary_is_exclusive() {
        let der = cert_expiring_at(NOW + 14 * DAY);
        assert_eq!(
            cert_status_at(&der, WARN, NOW).map(|c| c.expiring),
            Some(false)
        );
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert_eq!(cert_status_at(b"not a certificate", WARN, NOW), None);
    }

    #[test]
    fn both_configurations_build() {
        assert!(client_config(false, &[b"http/1.1"]).is_ok());
    }
}
