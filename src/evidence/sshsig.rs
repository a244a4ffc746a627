//! Detached SSHSIG signatures (OpenSSH's PROTOCOL.sshsig): what `ssh-keygen -Y sign` writes
//! and `ssh-keygen -Y verify` checks, so a client verifies a signed report with the tool they
//! already have.
//!
//! `ssh-key` frames the signature (the signed blob and the armored text); the Ed25519
//! signature itself is made and checked by `aws-lc-rs` through [`super::key`]. Uses nothing
//! else from the crate.

use ssh_key::{Algorithm, HashAlg, LineEnding, Signature, SshSig};

use super::key::{PublicKey, SigningKey};

/// Why an SSH signature could not be made or does not verify.
#[derive(Debug, thiserror::Error)]
pub enum SshSigError {
    /// The namespace is empty (SSHSIG requires one).
    #[error("an SSH signature needs a non-empty namespace")]
    EmptyNamespace,
    /// The text is not an armored SSH signature.
    #[error("not an SSH signature (-----BEGIN SSH SIGNATURE-----): {0}")]
    Malformed(String),
    /// The signature was made for another purpose.
    #[error("the signature is for namespace {found:?}, not {expected:?}")]
    Namespace {
        /// The namespace asked for.
        expected: String,
        /// The namespace in the signature.
        found: String,
    },
    /// The signature was made with a key of another algorithm.
    #[error("the signature was made with a {0} key: upledger checks Ed25519 signatures only")]
    NotEd25519(String),
    /// The signature was made by another key.
    #[error("the signature was made by key {found}, not by {expected}")]
    WrongKey {
        /// The fingerprint of the key asked for.
        expected: String,
        /// The fingerprint of the key in the signature.
        found: String,
    },
    /// The signature does not match the message.
    #[error("the signature does not match the message: the message or the signature was changed")]
    Mismatch,
    /// Framing the signature failed (an internal encoding error).
    #[error("cannot encode the SSH signature: {0}")]
    Encode(String),
}

/// Signs `msg` in `namespace` with SHA-512, as `ssh-keygen -Y sign -n NAMESPACE` does, and
/// returns the armored text (`-----BEGIN SSH SIGNATURE-----` …, newline-terminated).
pub fn sign(key: &SigningKey, namespace: &str, msg: &[u8]) -> Result<String, SshSigError> {
    if namespace.is_empty() {
        return Err(SshSigError::EmptyNamespace);
    }
    let encode = |e: ssh_key::Error| SshSigError::Encode(e.to_string());
    let signed_data = SshSig::signed_data(namespace, HashAlg::Sha512, msg).map_err(encode)?;
    let signature = Signature::new(Algorithm::Ed25519, key.sign(&signed_data)).map_err(encode)?;
    let sshsig = SshSig::new(
        key.public().key_data(),
        namespace,
        HashAlg::Sha512,
        signature,
    )
    .map_err(encode)?;
    let mut armored = sshsig.to_pem(LineEnding::LF).map_err(encode)?;
    if !armored.ends_with('\n') {
        armored.push('\n');
    }
    Ok(armored)
}

/// Checks that `armored` is `public`'s signature of `msg` in `namespace` (SHA-256 or SHA-512,
/// as `ssh-keygen -Y verify` accepts).
pub fn verify(
    public: &PublicKey,
    namespace: &str,
    msg: &[u8],
    armored: &str,
) -> Result<(), SshSigError> {
    let sshsig =
        SshSig::from_pem(armored.trim()).map_err(|e| SshSigError::Malformed(e.to_string()))?;
    if sshsig.namespace() != namespace {
        return Err(SshSigError::Namespace {
            expected: namespace.to_owned(),
            found: sshsig.namespace().to_owned(),
        });
    }
    let Some(signer) = sshsig.public_key().ed25519() else {
        return Err(SshSigError::NotEd25519(
            sshsig.public_key().algorithm().to_string(),
        ));
    };
    let signer = PublicKey::from_bytes(signer.0);
    if signer != *public {
        return Err(SshSigError::WrongKey {
            expected: public.fingerprint(),
            found: signer.fingerprint(),
        });
    }
    if sshsig.algorithm() != Algorithm::Ed25519 {
        return Err(SshSigError::NotEd25519(sshsig.algorithm().to_string()));
    }
    // The reserved field is empty in every signature OpenSSH makes; recomputing the blob
    // without it makes a signature that uses it fail as a mismatch.
    let signed_data = SshSig::signed_data(namespace, sshsig.hash_alg(), msg)
        .map_err(|e| SshSigError::Malformed(e.to_string()))?;
    if public.verify(&signed_data, sshsig.signature_bytes()) {
        Ok(())
    } else {
        Err(SshSigError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::key::{REPORT_NAMESPACE, tests::SSH_KEYGEN_KEY, tests::SSH_KEYGEN_PUB};

    /// `printf 'hello upledger\n' > msg; ssh-keygen -Y sign -f KEY -n upledger-report msg`
    /// with the `SSH_KEYGEN_KEY` fixture (OpenSSH 9.2).
    const SSH_KEYGEN_SIGNATURE: &str = "-----BEGIN SSH SIGNATURE-----
U1NIU0lHAAAAAQAAADMAAAALc3NoLWVkMjU1MTkAAAAgwiyBgxMsPuUDFb3YkyReq6qhnv
GnhAN/9rcnKOe1WKAAAAAPdXBsZWRnZXItcmVwb3J0AAAAAAAAAAZzaGE1MTIAAABTAAAA
C3NzaC1lZDI1NTE5AAAAQI0a/INyqVCujGZamYYskyOhOPwYwGTMui7SRJ6v/RIuAw2ioa
sLSBN8n3KzQsxG+ZbUU7px4VNnn/7z4SHlIwg=
-----END SSH SIGNATURE-----
";
    const MESSAGE: &[u8] = b"hello upledger\n";

    fn fixture_key() -> SigningKey {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("key");
        std::fs::write(&path, SSH_KEYGEN_KEY).expect("write key");
        SigningKey::read_openssh(&path).expect("read key")
    }

    #[test]
    fn signs_byte_for_byte_as_ssh_keygen() {
        // Ed25519 is deterministic: the same key, namespace and message give ssh-keygen's
        // exact output, framing and line wrapping included.
        let signature = sign(&fixture_key(), REPORT_NAMESPACE, MESSAGE).expect("sign");
        assert_eq!(signature, SSH_KEYGEN_SIGNATURE);
    }

    #[test]
    fn verifies_ssh_keygen_signatures() {
        let public = PublicKey::from_openssh(SSH_KEYGEN_PUB).expect("public");
        verify(&public, REPORT_NAMESPACE, MESSAGE, SSH_KEYGEN_SIGNATURE).expect("verifies");
    }

    #[test]
    fn round_trips_and_rejects_every_change() {
        let key = SigningKey::generate("t").expect("generate");
        let public = key.public();
        let signature = sign(&key, "upledger-report", b"report").expect("sign");
        verify(&public, "upledger-report", b"report", &signature).expect("verifies");

        let error = verify(&public, "upledger-report", b"reporT", &signature).expect_err("msg");
        assert!(matches!(error, SshSigError::Mismatch), "{error}");
        assert!(
            error
                .to_string()
                .contains("message or the signature was changed")
        );

        let error = verify(&public, "file", b"report", &signature).expect_err("namespace");
        assert_eq!(
            error.to_string(),
            "the signature is for namespace \"upledger-report\", not \"file\""
        );

        let other = SigningKey::generate("o").expect("generate").public();
        let error = verify(&other, "upledger-report", b"report", &signature).expect_err("key");
        assert!(matches!(error, SshSigError::WrongKey { .. }), "{error}");
        assert!(error.to_string().contains(&public.fingerprint()), "{error}");

        let error = verify(&public, "upledger-report", b"report", "garbage").expect_err("junk");
        assert!(
            error.to_string().starts_with("not an SSH signature"),
            "{error}"
        );

        assert!(matches!(
            sign(&key, "", b"x"),
            Err(SshSigError::EmptyNamespace)
        ));
    }

    #[test]
    fn a_changed_signature_byte_is_rejected() {
        let key = SigningKey::generate("t").expect("generate");
        let signature = sign(&key, "n", b"m").expect("sign");
        let sshsig = SshSig::from_pem(&signature).expect("parse own signature");
        let mut bytes = sshsig.signature_bytes().to_vec();
        bytes[10] ^= 0x40;
        let forged = SshSig::new(
            sshsig.public_key().clone(),
            "n",
            sshsig.hash_alg(),
            Signature::new(Algorithm::Ed25519, bytes).expect("signature"),
        )
        .and_then(|s| s.to_pem(LineEnding::LF))
        .expect("encode");
        let error = verify(&key.public(), "n", b"m", &forged).expect_err("forged");
        assert!(matches!(error, SshSigError::Mismatch), "{error}");
    }
}
