//! Ed25519 cosignatures of checkpoints (c2sp.org/tlog-cosignature, `cosignature/v1`) and the
//! request body of a witness's `add-checkpoint` call (c2sp.org/tlog-witness).
//!
//! A cosignature is a note signature line whose key id is made with type byte 0x04 instead of
//! the 0x01 of a plain note signature, and whose signed message is not the note body but
//! `cosignature/v1\ntime <t>\n` followed by the body. The distinct id and the distinct message
//! are what keep a witness's statement ("the largest consistent tree I saw of this log, as of
//! `t`, has this root") from ever passing for a log's own signature and back.
//!
//! Only the Ed25519 format: upledger's keys are Ed25519 (one crypto stack, aws-lc-rs), and
//! the ML-DSA-44 format the spec recommends for new deployments needs a second implementation.
//! Uses only `note`, `key` and `merkle` of the crate.

use aws_lc_rs::digest::{SHA256, digest};
use base64ct::{Base64, Encoding};

use super::key::{PublicKey, SigningKey};
use super::merkle;
use super::note::{self, Note, NoteError, NoteSignature};

/// The signature type byte of Ed25519 cosignatures (c2sp.org/tlog-cosignature): part of the
/// key id, so a cosigner's lines never match the note key id of the same name and key.
pub const COSIGNATURE_TYPE: u8 = 0x04;

/// The first line of every cosigned message: domain separation from plain note signatures.
const HEADER: &str = "cosignature/v1\n";

/// Bytes of a cosignature after the key id: the big-endian timestamp and the Ed25519 signature.
const TIMESTAMPED_SIGNATURE_BYTES: usize = 8 + 64;

/// The largest timestamp the format allows, 2^63-1 (it is a POSIX time that must fit a
/// signed 64-bit integer).
const MAX_TIMESTAMP: u64 = i64::MAX as u64;

/// Consistency proof lines an `add-checkpoint` request may carry: the spec's client limit,
/// which is also the longest proof any tree of up to 2^63 leaves needs.
pub const MAX_PROOF_LINES: usize = 63;

/// The largest `add-checkpoint` body a witness reads. The biggest well-formed request is 63
/// proof lines of 45 bytes (~2.8 KiB) plus a checkpoint note with at most
/// [`note::MAX_SIGNATURES`] (100) signature lines of ~100-200 bytes (~20 KiB) and a short
/// body: 64 KiB holds that with room for long origins and extension lines, and bounds what an
/// unauthenticated client makes the witness buffer and parse.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// The cosigner key id: `SHA-256(name ‖ 0x0A ‖ 0x04 ‖ public key)[..4]`.
pub fn cosigner_key_id(name: &str, public: &PublicKey) -> [u8; 4] {
    let mut input = Vec::with_capacity(name.len() + 34);
    input.extend_from_slice(name.as_bytes());
    input.push(b'\n');
    input.push(COSIGNATURE_TYPE);
    input.extend_from_slice(public.as_bytes());
    let hash = digest(&SHA256, &input);
    let mut id = [0u8; 4];
    id.copy_from_slice(&hash.as_ref()[..4]);
    id
}

/// The cosigner's verifier key, `name+hex(id)+base64(0x04 ‖ key)`: what a log or client
/// configures to recognise this witness (the spec's optional vkey encoding).
pub fn cosigner_verifier_key(name: &str, public: &PublicKey) -> String {
    let mut material = Vec::with_capacity(33);
    material.push(COSIGNATURE_TYPE);
    material.extend_from_slice(public.as_bytes());
    let id = cosigner_key_id(name, public);
    format!(
        "{name}+{:08x}+{}",
        u32::from_be_bytes(id),
        Base64::encode_string(&material)
    )
}

/// The message a `cosignature/v1` signs: the header line, the timestamp line and the note
/// body (with its final newline, without signature lines).
fn cosigned_message(body: &str, timestamp: u64) -> Vec<u8> {
    format!("{HEADER}time {timestamp}\n{body}").into_bytes()
}

/// One signature line as a note carries it: `— name base64(key id ‖ signature)\n`. Used to
/// copy verified lines from one note to another byte for byte (base64 here is canonical, so
/// re-encoding what was parsed gives the original text).
pub fn signature_line(signature: &NoteSignature) -> String {
    let mut blob = Vec::with_capacity(4 + signature.signature.len());
    blob.extend_from_slice(&signature.key_id);
    blob.extend_from_slice(&signature.signature);
    format!(
        "\u{2014} {} {}\n",
        signature.name,
        Base64::encode_string(&blob)
    )
}

/// Cosigns the checkpoint note body `body` as cosigner `name` at POSIX time `timestamp`, and
/// returns the one signature line to append to the note.
///
/// The body must be one a note can carry and end with a newline, because the signature is
/// over those exact bytes and a verifier reads them back from the note. A zero timestamp is
/// refused because tlog-witness forbids omitting it, one past 2^63-1 because the format does.
pub fn cosign(
    body: &str,
    name: &str,
    key: &SigningKey,
    timestamp: u64,
) -> Result<String, NoteError> {
    note::check_name(name)?;
    note::check_text(body)?;
    if !body.ends_with('\n') {
        return Err(NoteError::Text("it must end with a newline"));
    }
    if timestamp == 0 || timestamp > MAX_TIMESTAMP {
        return Err(NoteError::Timestamp(timestamp));
    }
    let mut blob = Vec::with_capacity(4 + TIMESTAMPED_SIGNATURE_BYTES);
    blob.extend_from_slice(&cosigner_key_id(name, &key.public()));
    blob.extend_from_slice(&timestamp.to_be_bytes());
    blob.extend_from_slice(&key.sign(&cosigned_message(body, timestamp)));
    Ok(format!(
        "\u{2014} {name} {}\n",
        Base64::encode_string(&blob)
    ))
}

/// A cosignature found valid on a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosignature {
    /// The cosigner name of the line.
    pub name: String,
    /// When the cosigner signed, POSIX seconds.
    pub timestamp: u64,
}

/// The valid cosignatures by `witness` on `note`, in line order.
///
/// A line counts when its key id is the cosigner id of *its own* name and `witness` (a client
/// may know only the witness's key, not the name it signs as), its signature part is exactly
/// a timestamp and an Ed25519 signature, the timestamp is within the format's range, and the
/// signature verifies over the cosigned message of the note's body. A line that matches the
/// id and fails any of that is left out, not an error: a cosignature that fails is no
/// cosignature, and whoever counts cosignatures only needs the valid ones. The log's own
/// signature is not looked at here; callers check it with [`Note::verify`].
pub fn cosignatures_by(note: &Note, witness: &PublicKey) -> Vec<Cosignature> {
    let body = note.unverified_body();
    note.signatures()
        .iter()
        .filter_map(|line| {
            if line.key_id != cosigner_key_id(&line.name, witness)
                || line.signature.len() != TIMESTAMPED_SIGNATURE_BYTES
            {
                return None;
            }
            let (time, signature) = line.signature.split_at(8);
            let timestamp = u64::from_be_bytes(time.try_into().ok()?);
            if timestamp > MAX_TIMESTAMP {
                return None;
            }
            witness
                .verify(&cosigned_message(body, timestamp), signature)
                .then(|| Cosignature {
                    name: line.name.clone(),
                    timestamp,
                })
        })
        .collect()
}

/// Why an `add-checkpoint` request body is refused (a witness answers 400 with this text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The body is larger than any well-formed request.
    #[error("the request is {size} bytes, more than the {max} a request may have")]
    TooLarge {
        /// Bytes received.
        size: usize,
        /// [`MAX_REQUEST_BYTES`].
        max: usize,
    },
    /// The body is not UTF-8.
    #[error("the request is not UTF-8")]
    NotUtf8,
    /// A line before the checkpoint is not newline-terminated.
    #[error("line {0} of the request does not end with a newline")]
    Unterminated(usize),
    /// The first line is not `old <size>`.
    #[error("the first line must be \"old <size>\", not {0:?}")]
    OldLine(String),
    /// The old size is not a canonical decimal.
    #[error("the old size {0:?} is not a decimal number without leading zeros")]
    OldSize(String),
    /// More consistency proof lines than the spec allows.
    #[error("more than {MAX_PROOF_LINES} consistency proof lines")]
    TooManyProofLines,
    /// A proof line is not one hash in standard base64.
    #[error("consistency proof line {line} is not a 32-byte hash in standard base64")]
    ProofLine {
        /// Its line number in the request, from 1.
        line: usize,
    },
    /// The proof lines are not followed by the empty line before the checkpoint.
    #[error("no empty line between the consistency proof and the checkpoint")]
    NoBlankLine,
    /// The checkpoint is not a well-formed signed note.
    #[error("the checkpoint: {0}")]
    Note(#[from] NoteError),
}

/// An `add-checkpoint` request (c2sp.org/tlog-witness): the size of the checkpoint the
/// witness last cosigned as the client believes, a consistency proof from it, and the new
/// checkpoint as a signed note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The old size.
    pub old: u64,
    /// The consistency proof from `old` to the checkpoint's size.
    pub proof: Vec<merkle::Hash>,
    /// The checkpoint note, signatures included, as sent (it parses with [`Note::parse`]).
    pub note: String,
}

impl AddCheckpoint {
    /// Parses a request body strictly: the spec's grammar exactly, so that two witnesses never
    /// read one request two ways. The note is checked to be a well-formed signed note; its
    /// signatures and checkpoint body are the witness's to judge.
    pub fn parse(body: &[u8]) -> Result<AddCheckpoint, RequestError> {
        if body.len() > MAX_REQUEST_BYTES {
            return Err(RequestError::TooLarge {
                size: body.len(),
                max: MAX_REQUEST_BYTES,
            });
        }
        let text = std::str::from_utf8(body).map_err(|_| RequestError::NotUtf8)?;
        let mut rest = text;
        let mut number = 0;

        let old_line = next_line(&mut rest, &mut number)?;
        let old_text = old_line
            .strip_prefix("old ")
            .ok_or_else(|| RequestError::OldLine(old_line.to_owned()))?;
        let canonical = old_text == "0"
            || (!old_text.is_empty()
                && !old_text.starts_with('0')
                && old_text.bytes().all(|b| b.is_ascii_digit()));
        let old = old_text
            .parse::<u64>()
            .ok()
            .filter(|_| canonical)
            .ok_or_else(|| RequestError::OldSize(old_text.to_owned()))?;

        let mut proof = Vec::new();
        loop {
            if rest.is_empty() {
                return Err(RequestError::NoBlankLine);
            }
            let line = next_line(&mut rest, &mut number)?;
            if line.is_empty() {
                break;
            }
            if proof.len() == MAX_PROOF_LINES {
                return Err(RequestError::TooManyProofLines);
            }
            let hash: merkle::Hash = Base64::decode_vec(line)
                .ok()
                .and_then(|hash| hash.try_into().ok())
                .ok_or(RequestError::ProofLine { line: number })?;
            proof.push(hash);
        }
        Note::parse(rest)?;
        Ok(AddCheckpoint {
            old,
            proof,
            note: rest.to_owned(),
        })
    }

    /// The request body as sent on the wire (what [`AddCheckpoint::parse`] reads back).
    pub fn render(&self) -> String {
        let mut text = format!("old {}\n", self.old);
        for hash in &self.proof {
            text.push_str(&Base64::encode_string(hash));
            text.push('\n');
        }
        text.push('\n');
        text.push_str(&self.note);
        text
    }
}

/// The next newline-terminated line of `rest` (advanced past it), counting lines in `number`.
fn next_line<'a>(rest: &mut &'a str, number: &mut usize) -> Result<&'a str, RequestError> {
    *number += 1;
    let (line, after) = rest
        .split_once('\n')
        .ok_or(RequestError::Unterminated(*number))?;
    *rest = after;
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::note::{Checkpoint, key_id, sign_note};

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_seed(&[seed; 32], "test").expect("key")
    }

    fn checkpoint_note(size: u64) -> (String, String) {
        let body = Checkpoint {
            origin: "example.org/log".to_owned(),
            size,
            root: [size as u8; 32],
            extensions: Vec::new(),
        }
        .body();
        let note = sign_note(&body, "example.org/log", &key(1)).expect("sign");
        (body, note)
    }

    #[test]
    fn a_cosignature_round_trips_and_is_found_by_key() {
        let witness = key(2);
        let (body, note) = checkpoint_note(5);
        let line = cosign(&body, "witness.example/w1", &witness, 1_700_000_000).expect("cosign");
        assert!(line.starts_with("\u{2014} witness.example/w1 "));
        assert!(line.ends_with('\n'));
        let cosigned = Note::parse(&format!("{note}{line}")).expect("parse");
        assert_eq!(
            cosignatures_by(&cosigned, &witness.public()),
            vec![Cosignature {
                name: "witness.example/w1".to_owned(),
                timestamp: 1_700_000_000
            }]
        );
        // The log's signature still verifies beside it and is not taken for a cosignature.
        assert!(cosigned.verify("example.org/log", &key(1).public()).is_ok());
        assert!(cosignatures_by(&cosigned, &key(1).public()).is_empty());
    }

    #[test]
    fn the_spec_message_layout_is_signed() {
        let witness = key(3);
        let body =
            "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
        let line = cosign(body, "w", &witness, 1_679_315_147).expect("cosign");
        let encoded = line.trim_end().rsplit_once(' ').expect("line").1;
        let blob = Base64::decode_vec(encoded).expect("base64");
        assert_eq!(blob.len(), 4 + 8 + 64);
        assert_eq!(blob[..4], cosigner_key_id("w", &witness.public()));
        assert_eq!(blob[4..12], 1_679_315_147u64.to_be_bytes());
        let message = format!("cosignature/v1\ntime 1679315147\n{body}");
        assert!(witness.public().verify(message.as_bytes(), &blob[12..]));
    }

    #[test]
    fn a_changed_body_or_timestamp_fails() {
        let witness = key(2);
        let (body, note) = checkpoint_note(5);
        let line = cosign(&body, "w.example", &witness, 1_000).expect("cosign");

        // The body changed after cosigning (the log's line is then bad too, but this only
        // looks at cosignatures).
        let changed = format!("{note}{line}").replacen("\n5\n", "\n6\n", 1);
        let parsed = Note::parse(&changed).expect("parse");
        assert!(cosignatures_by(&parsed, &witness.public()).is_empty());

        // The timestamp changed: the signature is over the original one.
        let encoded = line.trim_end().rsplit_once(' ').expect("line").1;
        let mut blob = Base64::decode_vec(encoded).expect("base64");
        blob[11] ^= 1;
        let moved = format!(
            "{note}\u{2014} w.example {}\n",
            Base64::encode_string(&blob)
        );
        let parsed = Note::parse(&moved).expect("parse");
        assert!(cosignatures_by(&parsed, &witness.public()).is_empty());

        // A blob of the wrong length with the right id is not a cosignature either.
        let short = format!(
            "{note}\u{2014} w.example {}\n",
            Base64::encode_string(&blob[..70])
        );
        let parsed = Note::parse(&short).expect("parse");
        assert!(cosignatures_by(&parsed, &witness.public()).is_empty());
    }

    #[test]
    fn a_line_from_another_key_is_ignored() {
        let (body, note) = checkpoint_note(7);
        let other = cosign(&body, "w.example", &key(4), 1_000).expect("cosign");
        let ours = cosign(&body, "w2.example", &key(2), 2_000).expect("cosign");
        let parsed = Note::parse(&format!("{note}{other}{ours}")).expect("parse");
        assert_eq!(
            cosignatures_by(&parsed, &key(2).public()),
            vec![Cosignature {
                name: "w2.example".to_owned(),
                timestamp: 2_000
            }]
        );
        assert!(cosignatures_by(&parsed, &key(9).public()).is_empty());
    }

    #[test]
    fn the_cosigner_key_id_differs_from_the_note_key_id() {
        let public = key(2).public();
        assert_ne!(
            cosigner_key_id("w.example", &public),
            key_id("w.example", &public)
        );
        // And a plain note signature by the same name and key is no cosignature.
        let (body, _) = checkpoint_note(3);
        let plain = sign_note(&body, "w.example", &key(2)).expect("sign");
        let parsed = Note::parse(&plain).expect("parse");
        assert!(cosignatures_by(&parsed, &public).is_empty());
        let vkey = cosigner_verifier_key("w.example", &public);
        let id = cosigner_key_id("w.example", &public);
        let (prefix, material) = vkey.rsplit_once('+').expect("vkey");
        assert_eq!(prefix, format!("w.example+{:08x}", u32::from_be_bytes(id)));
        let material = Base64::decode_vec(material).expect("base64");
        assert_eq!(material[0], COSIGNATURE_TYPE);
        assert_eq!(material[1..], public.as_bytes()[..]);
    }

    #[test]
    fn cosign_checks_its_input() {
        let witness = key(2);
        let (body, _) = checkpoint_note(1);
        assert_eq!(
            cosign(&body, "w", &witness, 0),
            Err(NoteError::Timestamp(0))
        );
        assert_eq!(
            cosign(&body, "w", &witness, 1 << 63),
            Err(NoteError::Timestamp(1 << 63))
        );
        assert!(cosign(&body, "w", &witness, (1 << 63) - 1).is_ok());
        assert!(cosign(&body, "", &witness, 1).is_err());
        assert!(cosign(&body, "a b", &witness, 1).is_err());
        assert!(cosign(&body, "a+b", &witness, 1).is_err());
        assert!(cosign("no newline", "w", &witness, 1).is_err());
        assert!(cosign("con\u{7}trol\n", "w", &witness, 1).is_err());
    }

    fn request(old: u64, proof: Vec<merkle::Hash>) -> AddCheckpoint {
        AddCheckpoint {
            old,
            proof,
            note: checkpoint_note(20).1,
        }
    }

    #[test]
    fn a_request_parses_and_renders_back() {
        for old in [0, 1, 20] {
            let proof = (0..old.min(3)).map(|i| [i as u8 + 1; 32]).collect();
            let req = request(old, proof);
            let text = req.render();
            assert!(text.starts_with(&format!("old {old}\n")));
            assert_eq!(AddCheckpoint::parse(text.as_bytes()), Ok(req));
        }
        // The spec's example layout (its signatures are not ours: parse only checks form).
        let spec = "old 20852014\n\
            PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n\
            jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n\
            5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n\
            /6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n\
            \n\
            example.com/behind-the-sofa\n\
            20852163\n\
            CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\
            \n\
            \u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n\
            \u{2014} example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=\n";
        let parsed = AddCheckpoint::parse(spec.as_bytes()).expect("spec example");
        assert_eq!(parsed.old, 20_852_014);
        assert_eq!(parsed.proof.len(), 4);
        assert_eq!(parsed.render(), spec);
    }

    /// Whether a refusal is the one a malformed request should get.
    type Expected = fn(&RequestError) -> bool;

    #[test]
    fn malformed_requests_are_refused() {
        let good = request(5, vec![[1; 32], [2; 32]]).render();
        let note = checkpoint_note(20).1;
        let hash = Base64::encode_string(&[7u8; 32]);
        let many: String = (0..=MAX_PROOF_LINES).map(|_| format!("{hash}\n")).collect();
        let max: String = (0..MAX_PROOF_LINES).map(|_| format!("{hash}\n")).collect();
        let short = Base64::encode_string(&[7u8; 31]);
        let unsigned = note.split_once("\n\n").expect("body").0.to_owned() + "\n\n";
        let cases: Vec<(Vec<u8>, &str, Expected)> = vec![
            (
                format!("old 05\n\n{note}").into_bytes(),
                "leading zero",
                |e| matches!(e, RequestError::OldSize(_)),
            ),
            (format!("old 00\n\n{note}").into_bytes(), "two zeros", |e| {
                matches!(e, RequestError::OldSize(_))
            }),
            (format!("old \n\n{note}").into_bytes(), "no number", |e| {
                matches!(e, RequestError::OldSize(_))
            }),
            (format!("old +5\n\n{note}").into_bytes(), "sign", |e| {
                matches!(e, RequestError::OldSize(_))
            }),
            (
                format!("old 18446744073709551616\n\n{note}").into_bytes(),
                "overflow",
                |e| matches!(e, RequestError::OldSize(_)),
            ),
            (format!("Old 5\n\n{note}").into_bytes(), "not old", |e| {
                matches!(e, RequestError::OldLine(_))
            }),
            (
                format!("old  5\n\n{note}").into_bytes(),
                "two spaces",
                |e| matches!(e, RequestError::OldSize(_)),
            ),
            (
                format!("old 5\n{many}\n{note}").into_bytes(),
                "64 proof lines",
                |e| *e == RequestError::TooManyProofLines,
            ),
            (
                format!("old 5\n{}\n\n{note}", "A=A=").into_bytes(),
                "bad base64",
                |e| *e == RequestError::ProofLine { line: 2 },
            ),
            (
                format!("old 5\n{}\n\n{note}", hash.trim_end_matches('=')).into_bytes(),
                "unpadded base64",
                |e| *e == RequestError::ProofLine { line: 2 },
            ),
            (
                format!("old 5\n{hash}\n{short}\n\n{note}").into_bytes(),
                "31-byte hash",
                |e| *e == RequestError::ProofLine { line: 3 },
            ),
            (
                format!("old 5\n{hash}\n{note}").into_bytes(),
                "missing blank line",
                |e| matches!(e, RequestError::ProofLine { .. }),
            ),
            (
                format!("old 5\n{hash}\n").into_bytes(),
                "nothing after the proof",
                |e| *e == RequestError::NoBlankLine,
            ),
            (b"old 5".to_vec(), "unterminated old line", |e| {
                *e == RequestError::Unterminated(1)
            }),
            (
                format!("old 5\n{hash}").into_bytes(),
                "unterminated proof line",
                |e| *e == RequestError::Unterminated(2),
            ),
            (
                good.trim_end().as_bytes().to_vec(),
                "no final newline",
                |e| matches!(e, RequestError::Note(_)),
            ),
            (
                format!("old 5\n\n{unsigned}").into_bytes(),
                "note without signatures",
                |e| matches!(e, RequestError::Note(_)),
            ),
            (b"old 5\n\n".to_vec(), "no note", |e| {
                matches!(e, RequestError::Note(_))
            }),
            (
                [b"old 5\n\n".as_slice(), &[0xff, 0xfe], b"\n"].concat(),
                "non-UTF-8",
                |e| *e == RequestError::NotUtf8,
            ),
            (vec![b'x'; MAX_REQUEST_BYTES + 1], "too large", |e| {
                matches!(e, RequestError::TooLarge { .. })
            }),
        ];
        for (body, why, expected) in cases {
            match AddCheckpoint::parse(&body) {
                Ok(parsed) => panic!("{why}: accepted as {parsed:?}"),
                Err(error) => assert!(expected(&error), "{why}: refused as {error:?}"),
            }
        }
        // Exactly 63 proof lines are fine, and the good request is.
        assert!(AddCheckpoint::parse(format!("old 5\n{max}\n{note}").as_bytes()).is_ok());
        assert!(AddCheckpoint::parse(good.as_bytes()).is_ok());
    }
}
