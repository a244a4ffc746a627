//! C2SP signed notes (c2sp.org/signed-note) with Ed25519 signatures, and the transparency-log
//! checkpoints written in them (c2sp.org/tlog-checkpoint): the format witnesses and other
//! tlog tools read, so the log's signed heads are checkable without upledger.
//!
//! Own code rather than a crate: the format is small and the crates for it bring a second
//! Ed25519 implementation. Signatures go through [`super::key`] (aws-lc-rs); SHA-256 comes
//! from aws-lc-rs too. Uses nothing else from the crate but `model::hex`.

use aws_lc_rs::digest::{SHA256, digest};
use base64ct::{Base64, Encoding};

use super::key::{PublicKey, SigningKey};

/// The signature type byte of Ed25519 note signatures (c2sp.org/signed-note).
pub const ED25519_TYPE: u8 = 0x01;

/// The most signature lines a note may carry. The spec asks verifiers for a limit of at least
/// 16; 100 is the Go reference implementation's, leaving room for many witnesses.
pub const MAX_SIGNATURES: usize = 100;

/// Why a note, verifier key or checkpoint is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// A key name that the format cannot carry.
    #[error("invalid key name {0:?}: it must be non-empty, without spaces or '+'")]
    KeyName(String),
    /// A note text that the format cannot carry.
    #[error("invalid note text: {0}")]
    Text(&'static str),
    /// A note that does not follow the format.
    #[error("malformed signed note: {0}")]
    Malformed(String),
    /// A verifier key (`name+hex+base64`) that could not be read.
    #[error("invalid verifier key {key:?}: {reason}")]
    VerifierKey {
        /// The text given.
        key: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A signature line names the key and matches its id, and does not verify.
    #[error("the signature by {0} does not verify: the note was changed or forged")]
    BadSignature(String),
    /// No signature line is by the key asked for.
    #[error("the note carries no signature by {0}")]
    NotSigned(String),
    /// A checkpoint body that does not follow c2sp.org/tlog-checkpoint.
    #[error("malformed checkpoint: {0}")]
    Checkpoint(String),
    /// A cosignature timestamp outside what c2sp.org/tlog-cosignature allows (1 to 2^63-1:
    /// zero would say nothing about when, and the format caps it at 2^63-1).
    #[error("cosignature timestamp {0} is not between 1 and 2^63-1")]
    Timestamp(u64),
}

/// Key names are non-empty and hold no Unicode space and no `+` (which separates the fields
/// of a verifier key). Crate-visible because cosigner and witnessed-log names follow the same
/// rule (they appear in the same signature lines).
pub(crate) fn check_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '+') {
        return Err(NoteError::KeyName(name.to_owned()));
    }
    Ok(())
}

/// Notes are UTF-8 (a `&str` already) with no control character but newline. Crate-visible
/// because a cosigned body must be one a note can carry.
pub(crate) fn check_text(text: &str) -> Result<(), NoteError> {
    if text.chars().any(|c| c < ' ' && c != '\n') {
        return Err(NoteError::Text(
            "it contains a control character other than newline",
        ));
    }
    Ok(())
}

/// The Ed25519 key id: `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[..4]`.
pub fn key_id(name: &str, public: &PublicKey) -> [u8; 4] {
    let mut input = Vec::with_capacity(name.len() + 34);
    input.extend_from_slice(name.as_bytes());
    input.push(b'\n');
    input.push(ED25519_TYPE);
    input.extend_from_slice(public.as_bytes());
    let hash = digest(&SHA256, &input);
    let mut id = [0u8; 4];
    id.copy_from_slice(&hash.as_ref()[..4]);
    id
}

/// The verifier key (vkey) a note reader configures: `name+hex(key id)+base64(0x01 ‖ key)`.
pub fn verifier_key(name: &str, public: &PublicKey) -> String {
    let mut material = Vec::with_capacity(33);
    material.push(ED25519_TYPE);
    material.extend_from_slice(public.as_bytes());
    format!(
        "{name}+{}+{}",
        hex(&key_id(name, public)),
        Base64::encode_string(&material)
    )
}

use crate::model::hex;

/// A parsed Ed25519 verifier key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    /// The key name, as in signature lines.
    pub name: String,
    /// The key id, checked against the name and key.
    pub id: [u8; 4],
    /// The public key.
    pub public: PublicKey,
}

impl VerifierKey {
    /// Parses `name+hex8+base64(0x01 ‖ key)`, checking that the id is the one the name and key
    /// give (so a mistyped vkey fails here, not as "no signature" later).
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let error = |reason| NoteError::VerifierKey {
            key: text.to_owned(),
            reason,
        };
        let (name, rest) = text.split_once('+').ok_or(error("expected name+id+key"))?;
        let (id_hex, material) = rest.split_once('+').ok_or(error("expected name+id+key"))?;
        check_name(name).map_err(|_| error("invalid key name"))?;
        let id = parse_hex8(id_hex).ok_or(error("the key id is not 8 lowercase hex digits"))?;
        let material = Base64::decode_vec(material).map_err(|_| error("the key is not base64"))?;
        let (&kind, key) = material.split_first().ok_or(error("the key is empty"))?;
        if kind != ED25519_TYPE {
            return Err(error("not an Ed25519 key (type 0x01)"));
        }
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| error("an Ed25519 key is 32 bytes"))?;
        let public = PublicKey::from_bytes(key);
        if key_id(name, &public) != id {
            return Err(error("the key id does not match the name and key"));
        }
        Ok(VerifierKey {
            name: name.to_owned(),
            id,
            public,
        })
    }
}

fn parse_hex8(text: &str) -> Option<[u8; 4]> {
    if text.len() != 8
        || !text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let value = u32::from_str_radix(text, 16).ok()?;
    Some(value.to_be_bytes())
}

/// Signs `body` (which must end in a newline) as key `name`: the body, a blank line and one
/// signature line `— name base64(key id ‖ signature)`.
pub fn sign_note(body: &str, name: &str, key: &SigningKey) -> Result<String, NoteError> {
    check_name(name)?;
    check_text(body)?;
    if !body.ends_with('\n') {
        return Err(NoteError::Text("it must end with a newline"));
    }
    let mut blob = Vec::with_capacity(68);
    blob.extend_from_slice(&key_id(name, &key.public()));
    blob.extend_from_slice(&key.sign(body.as_bytes()));
    Ok(format!(
        "{body}\n\u{2014} {name} {}\n",
        Base64::encode_string(&blob)
    ))
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name.
    pub name: String,
    /// The key id (first four bytes of the decoded signature).
    pub key_id: [u8; 4],
    /// The signature proper (the rest).
    pub signature: Vec<u8>,
}

/// A signed note as read, its signatures not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    body: String,
    signatures: Vec<NoteSignature>,
}

impl Note {
    /// Parses a signed note strictly: no control characters but newline, a final newline, the
    /// body separated from the signatures by the last blank line, at least one and at most
    /// [`MAX_SIGNATURES`] well-formed signature lines, no key (name and id) signing twice.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let malformed = |reason: &str| NoteError::Malformed(reason.to_owned());
        check_text(text)?;
        if !text.ends_with('\n') {
            return Err(malformed("it does not end with a newline"));
        }
        let split = text
            .rfind("\n\n")
            .ok_or_else(|| malformed("no blank line before the signatures"))?;
        let (body, signature_text) = (&text[..=split], &text[split + 2..]);
        if signature_text.is_empty() {
            return Err(malformed("no signature lines"));
        }
        let lines: Vec<&str> = signature_text
            .strip_suffix('\n')
            .unwrap_or(signature_text)
            .split('\n')
            .collect();
        if lines.len() > MAX_SIGNATURES {
            return Err(NoteError::Malformed(format!(
                "more than {MAX_SIGNATURES} signatures"
            )));
        }
        let mut signatures: Vec<NoteSignature> = Vec::with_capacity(lines.len());
        for line in lines {
            let signature = parse_signature_line(line)?;
            if signatures
                .iter()
                .any(|s| s.name == signature.name && s.key_id == signature.key_id)
            {
                return Err(NoteError::Malformed(format!(
                    "two signatures by the same key ({})",
                    signature.name
                )));
            }
            signatures.push(signature);
        }
        Ok(Note {
            body: body.to_owned(),
            signatures,
        })
    }

    /// The body, unverified: use [`Note::verify`] to read it.
    pub fn unverified_body(&self) -> &str {
        &self.body
    }

    /// The signature lines, in order.
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// The body, if key `name` with `public` signed it. Signature lines by other keys (another
    /// name or another id, such as a witness's) are ignored, as the spec requires; a line that
    /// matches the key and does not verify rejects the whole note.
    pub fn verify(&self, name: &str, public: &PublicKey) -> Result<&str, NoteError> {
        let id = key_id(name, public);
        let mut verified = false;
        for signature in self
            .signatures
            .iter()
            .filter(|s| s.name == name && s.key_id == id)
        {
            if !public.verify(self.body.as_bytes(), &signature.signature) {
                return Err(NoteError::BadSignature(name.to_owned()));
            }
            verified = true;
        }
        if verified {
            Ok(&self.body)
        } else {
            Err(NoteError::NotSigned(name.to_owned()))
        }
    }
}

/// `— name base64(key id ‖ signature)`.
fn parse_signature_line(line: &str) -> Result<NoteSignature, NoteError> {
    let malformed = |reason: &str| NoteError::Malformed(format!("{reason}: {line:?}"));
    let rest = line
        .strip_prefix("\u{2014} ")
        .ok_or_else(|| malformed("a signature line must start with \"\u{2014} \""))?;
    let (name, encoded) = rest
        .split_once(' ')
        .ok_or_else(|| malformed("a signature line is \u{2014} name signature"))?;
    check_name(name).map_err(|_| malformed("invalid key name in signature line"))?;
    let blob = Base64::decode_vec(encoded).map_err(|_| malformed("signature is not base64"))?;
    if blob.len() < 5 {
        return Err(malformed("signature too short"));
    }
    let mut key_id = [0u8; 4];
    key_id.copy_from_slice(&blob[..4]);
    Ok(NoteSignature {
        name: name.to_owned(),
        key_id,
        signature: blob[4..].to_vec(),
    })
}

/// A transparency-log checkpoint (c2sp.org/tlog-checkpoint): the log's name, its size and
/// its RFC 6962 root hash, plus optional extension lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity (SPEC §8's `origin`); also the key name that signs it.
    pub origin: String,
    /// The number of leaves.
    pub size: u64,
    /// The Merkle tree's root hash at `size`.
    pub root: [u8; 32],
    /// Extension lines (none from upledger; kept when read).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The note body: `<origin>\n<size>\n<base64 root>\n` and one line per extension. The
    /// origin and extensions are assumed to be single non-empty lines (as [`Checkpoint::parse`]
    /// guarantees); [`sign_note`] refuses control characters in any case.
    pub fn body(&self) -> String {
        let mut body = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            Base64::encode_string(&self.root)
        );
        for extension in &self.extensions {
            body.push_str(extension);
            body.push('\n');
        }
        body
    }

    /// Parses a checkpoint body (the verified text of its note).
    pub fn parse(body: &str) -> Result<Self, NoteError> {
        let error = |reason: &str| NoteError::Checkpoint(reason.to_owned());
        let text = body
            .strip_suffix('\n')
            .ok_or_else(|| error("it does not end with a newline"))?;
        let mut lines = text.split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(error("the origin line is empty"));
        }
        let size_text = lines.next().ok_or_else(|| error("no tree size line"))?;
        let canonical = size_text == "0"
            || (!size_text.starts_with('0') && size_text.bytes().all(|b| b.is_ascii_digit()));
        let size = size_text
            .parse::<u64>()
            .ok()
            .filter(|_| canonical)
            .ok_or_else(|| {
                NoteError::Checkpoint(format!(
                    "tree size {size_text:?} is not a decimal number without leading zeros"
                ))
            })?;
        let root_text = lines.next().ok_or_else(|| error("no root hash line"))?;
        let root: [u8; 32] = Base64::decode_vec(root_text)
            .ok()
            .and_then(|root| root.try_into().ok())
            .ok_or_else(|| error("the root hash is not 32 bytes of base64"))?;
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(error("an extension line is empty"));
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// c2sp.org/signed-note, "Verifier keys", Example.
    const SPEC_VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
    const SPEC_NOTE: &str = "This is an example message.\n\n\u{2014} example.com/foo \
        Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

    /// The example of golang.org/x/mod/sumdb/note (the reference implementation), used as
    /// data: its private key is `0x01 ‖ seed` in base64.
    const GO_SEED: &str = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const GO_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
        then you don't know what your problem is.\n";
    const GO_NOTE: &str = "If you think cryptography is the answer to your problem,\n\
        then you don't know what your problem is.\n\n\u{2014} PeterNeumann \
        x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    /// c2sp.org/tlog-checkpoint's example body.
    const SPEC_CHECKPOINT: &str =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

    fn go_key() -> SigningKey {
        let material = Base64::decode_vec(GO_SEED).expect("seed");
        assert_eq!(material[0], ED25519_TYPE);
        let seed: [u8; 32] = material[1..].try_into().expect("32-byte seed");
        SigningKey::from_seed(&seed, "go").expect("key")
    }

    #[test]
    fn the_spec_example_verifies_and_its_vkey_is_reproduced() {
        let vkey = VerifierKey::parse(SPEC_VKEY).expect("spec vkey");
        assert_eq!(vkey.name, "example.com/foo");
        assert_eq!(hex(&vkey.id), "530d903a");
        assert_eq!(key_id("example.com/foo", &vkey.public), vkey.id);
        assert_eq!(verifier_key("example.com/foo", &vkey.public), SPEC_VKEY);
        let note = Note::parse(SPEC_NOTE).expect("spec note");
        assert_eq!(
            note.verify("example.com/foo", &vkey.public),
            Ok("This is an example message.\n")
        );
    }

    #[test]
    fn signs_as_the_go_reference_implementation() {
        let key = go_key();
        let vkey = VerifierKey::parse(GO_VKEY).expect("go vkey");
        assert_eq!(key.public(), vkey.public);
        assert_eq!(verifier_key("PeterNeumann", &key.public()), GO_VKEY);
        assert_eq!(
            sign_note(GO_TEXT, "PeterNeumann", &key).expect("sign"),
            GO_NOTE
        );
        let note = Note::parse(GO_NOTE).expect("parse");
        assert_eq!(note.verify("PeterNeumann", &vkey.public), Ok(GO_TEXT));
    }

    #[test]
    fn unknown_keys_are_ignored_and_a_bad_known_signature_rejects() {
        let key = SigningKey::generate("log").expect("generate");
        let witness = SigningKey::generate("witness").expect("generate");
        let body = "example.org/log\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
        let signed = sign_note(body, "example.org/log", &key).expect("sign");
        // A second signature by another key, appended as a witness would.
        let cosigned = sign_note(body, "witness.example", &witness).expect("sign");
        let witness_line = cosigned.rsplit_once("\n\n").expect("split").1;
        let both = format!("{signed}{witness_line}");
        let note = Note::parse(&both).expect("parse");
        assert_eq!(note.signatures().len(), 2);
        assert_eq!(note.verify("example.org/log", &key.public()), Ok(body));
        assert_eq!(note.verify("witness.example", &witness.public()), Ok(body));
        // Same name, other key (so another id): not this key's signature.
        assert_eq!(
            note.verify("example.org/log", &witness.public()),
            Err(NoteError::NotSigned("example.org/log".to_owned()))
        );

        // Body changed after signing: the known key's signature fails.
        let tampered = both.replacen("\n3\n", "\n4\n", 1);
        let note = Note::parse(&tampered).expect("parse");
        assert_eq!(
            note.verify("example.org/log", &key.public()),
            Err(NoteError::BadSignature("example.org/log".to_owned()))
        );
        // A flipped signature bit likewise.
        let (head, line) = signed.rsplit_once("\n\n").expect("split");
        let sig_text = line.trim_end().rsplit_once(' ').expect("line").1;
        let mut blob = Base64::decode_vec(sig_text).expect("b64");
        blob[20] ^= 1;
        let forged = format!(
            "{head}\n\n\u{2014} example.org/log {}\n",
            Base64::encode_string(&blob)
        );
        let note = Note::parse(&forged).expect("parse");
        assert!(matches!(
            note.verify("example.org/log", &key.public()),
            Err(NoteError::BadSignature(_))
        ));
    }

    #[test]
    fn the_last_blank_line_separates_body_and_signatures() {
        let key = SigningKey::generate("k").expect("generate");
        let body = "first\n\nsecond\n\n";
        let signed = sign_note(body, "k.example", &key).expect("sign");
        let note = Note::parse(&signed).expect("parse");
        assert_eq!(note.verify("k.example", &key.public()), Ok(body));
    }

    #[test]
    fn malformed_notes_are_refused() {
        let key = SigningKey::generate("k").expect("generate");
        let good = sign_note("text\n", "k.example", &key).expect("sign");
        let line = good.rsplit_once("\n\n").expect("split").1.to_owned();
        let many: String = (0..=MAX_SIGNATURES)
            .map(|i| {
                let blob = [i as u8, 0, 0, 0, 1];
                format!("\u{2014} n{i} {}\n", Base64::encode_string(&blob))
            })
            .collect();
        for (text, why) in [
            (good.trim_end().to_owned(), "no final newline"),
            (format!("text\n{line}"), "no blank line"),
            ("text\n\n".to_owned(), "no signatures"),
            (format!("text\n\n{line}\n"), "empty signature line"),
            (good.replace('\u{2014}', "-"), "hyphen for em dash"),
            (good.replace("k.example", "k+example"), "plus in name"),
            (good.replace(" k.example ", "  k.example "), "empty name"),
            (good.replace("text", "te\rxt"), "carriage return"),
            (good.replace("text", "te\txt"), "tab"),
            (format!("text\n\n{line}{line}"), "same key twice"),
            (
                "text\n\n\u{2014} k AAAA\n".to_owned(),
                "signature too short",
            ),
            ("text\n\n\u{2014} k A=A=\n".to_owned(), "bad base64"),
            (format!("text\n\n{many}"), "too many signatures"),
        ] {
            assert!(Note::parse(&text).is_err(), "{why}: accepted {text:?}");
        }
        // Exactly the maximum is fine.
        let at_max: String = many.lines().skip(1).map(|l| format!("{l}\n")).collect();
        assert!(Note::parse(&format!("text\n\n{at_max}")).is_ok());
    }

    #[test]
    fn sign_note_checks_its_input() {
        let key = SigningKey::generate("k").expect("generate");
        assert!(sign_note("no newline", "n", &key).is_err());
        assert!(sign_note("text\n", "", &key).is_err());
        assert!(sign_note("text\n", "a b", &key).is_err());
        assert!(sign_note("text\n", "a+b", &key).is_err());
        assert!(sign_note("te\0xt\n", "n", &key).is_err());
    }

    #[test]
    fn verifier_keys_are_checked() {
        for bad in [
            "example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
            "example.com/fop+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
            "example.com/foo+530D903A+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
            "example.com/foo+530d903a+AukyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
            "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U",
            "example.com/foo+530d903a",
            "+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        ] {
            assert!(VerifierKey::parse(bad).is_err(), "accepted {bad}");
        }
    }

    #[test]
    fn the_spec_checkpoint_parses_and_round_trips() {
        let checkpoint = Checkpoint::parse(SPEC_CHECKPOINT).expect("spec checkpoint");
        assert_eq!(checkpoint.origin, "example.com/behind-the-sofa");
        assert_eq!(checkpoint.size, 20_852_163);
        assert_eq!(hex(&checkpoint.root[..4]), "0ac5186a");
        assert!(checkpoint.extensions.is_empty());
        assert_eq!(checkpoint.body(), SPEC_CHECKPOINT);

        let with_extensions = Checkpoint {
            extensions: vec!["ext one".to_owned(), "two".to_owned()],
            ..checkpoint
        };
        let body = with_extensions.body();
        assert!(body.ends_with("=\next one\ntwo\n"), "{body}");
        assert_eq!(Checkpoint::parse(&body), Ok(with_extensions));
    }

    #[test]
    fn a_signed_checkpoint_round_trips() {
        let key = SigningKey::generate("log").expect("generate");
        let checkpoint = Checkpoint {
            origin: "upledger/host".to_owned(),
            size: 0,
            root: [7; 32],
            extensions: Vec::new(),
        };
        let note = sign_note(&checkpoint.body(), &checkpoint.origin, &key).expect("sign");
        let body = Note::parse(&note)
            .and_then(|n| n.verify("upledger/host", &key.public()).map(str::to_owned))
            .expect("verify");
        assert_eq!(Checkpoint::parse(&body), Ok(checkpoint));
    }

    #[test]
    fn malformed_checkpoints_are_refused() {
        let root = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";
        for (body, why) in [
            (format!("o\n1\n{root}"), "no final newline"),
            (format!("\n1\n{root}\n"), "empty origin"),
            ("o\n1\n".to_owned(), "no root"),
            (format!("o\n01\n{root}\n"), "leading zero"),
            (format!("o\n+1\n{root}\n"), "sign"),
            (format!("o\n-1\n{root}\n"), "negative"),
            (format!("o\n18446744073709551616\n{root}\n"), "overflow"),
            ("o\n1\nAAAA\n".to_owned(), "short root"),
            (format!("o\n1\n{root}\n\n"), "empty extension"),
        ] {
            assert!(
                Checkpoint::parse(&body).is_err(),
                "{why}: accepted {body:?}"
            );
        }
    }
}
