//! Throwaway certificates for loopback TLS servers, made fresh in each test with rcgen so their
//! validity can be set relative to now (expiring soon, valid for long, already expired).
//!
//! Every certificate is self-signed for `localhost`, `127.0.0.1` and `::1`: a probe with
//! `tls_verify = true` must reject it, one with `tls_verify = false` must read its expiry.

// Each test file uses a different part of the support kit.
#![allow(dead_code)]

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use rustls::{
    ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
};

const DAY: Duration = Duration::from_secs(86_400);

/// A self-signed leaf certificate and its key.
pub struct TestCert {
    /// The certificate, DER.
    pub der: CertificateDer<'static>,
    /// The certificate, PEM.
    pub pem: String,
    /// The private key, PKCS#8 DER.
    pub key_der: Vec<u8>,
    /// The private key, PEM.
    pub key_pem: String,
    /// The certificate's `notAfter`.
    pub not_after: SystemTime,
}

impl TestCert {
    /// Valid from 30 days ago until `days` days from now (`days < 0`: expired that long ago).
    pub fn valid_for_days(days: i64) -> TestCert {
        let now = SystemTime::now();
        let offset = DAY * u32::try_from(days.unsigned_abs()).expect("a sane number of days");
        let not_after = if days >= 0 {
            now + offset
        } else {
            now - offset
        };
        TestCert::with_validity(now - 30 * DAY, not_after)
    }

    /// Valid between the two instants.
    pub fn with_validity(not_before: SystemTime, not_after: SystemTime) -> TestCert {
        let key = rcgen::KeyPair::generate().expect("generate a key pair");
        let names = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        let mut params = rcgen::CertificateParams::new(names).expect("certificate parameters");
        params.not_before = not_before.into();
        params.not_after = not_after.into();
        let cert = params.self_signed(&key).expect("self-sign the certificate");
        TestCert {
            der: cert.der().clone(),
            pem: cert.pem(),
            key_der: key.serialize_der(),
            key_pem: key.serialize_pem(),
            not_after,
        }
    }

    /// A rustls server configuration presenting this certificate (aws-lc-rs, TLS 1.2 and 1.3,
    /// HTTP/1.1 only over ALPN so hand-written servers need not speak HTTP/2).
    pub fn server_config(&self) -> Arc<ServerConfig> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()));
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![self.der.clone()], key)
            .expect("server certificate and key");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

/// A certificate valid for another 400 days: far from expiring.
pub fn long_lived() -> TestCert {
    TestCert::valid_for_days(400)
}

/// A certificate expiring in 3 days: `expiring` under the usual 14-day warning.
pub fn expiring_soon() -> TestCert {
    TestCert::valid_for_days(3)
}

/// A certificate that expired a day ago.
pub fn expired() -> TestCert {
    TestCert::valid_for_days(-1)
}
