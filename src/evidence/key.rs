//! The Ed25519 key that signs checkpoints and reports, in the OpenSSH file formats, and the
//! `allowed_signers` file a client checks a signature against.
//!
//! OpenSSH formats because a client verifies with the tool they already have
//! (`ssh-keygen -Y verify`), and an operator may bring a key made by `ssh-keygen -t ed25519`.
//! `ssh-key` reads and writes the files only; every signature is made and checked by
//! `aws-lc-rs`, so there is one crypto stack. Uses nothing else from the crate.

use std::{
    fmt,
    fs::{self, OpenOptions},
    io::{self, Write},
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use crate::model::glob_match;
use aws_lc_rs::{
    rand::{SecureRandom, SystemRandom},
    signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey},
};
use ssh_key::{
    Algorithm, HashAlg, LineEnding,
    private::{Ed25519Keypair, Ed25519PrivateKey, KeypairData},
    public::{Ed25519PublicKey, KeyData},
};

/// The SSHSIG namespace of signed reports (SPEC §8), the one `allowed_signers` lines name.
pub const REPORT_NAMESPACE: &str = "upledger-report";

/// Why a key, public key or `allowed_signers` file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read (missing, unreadable).
    #[error("cannot read key file {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said (in the message, not a `source`, so that it prints once).
        error: io::Error,
    },
    /// The private key is encrypted; the daemon signs unattended, so it cannot ask for one.
    #[error(
        "passphrase-protected keys are not supported: {} (the daemon signs unattended; make a key \
         with `upledger keygen` or `ssh-keygen -t ed25519 -N ''`)",
        path.display()
    )]
    Encrypted {
        /// The file.
        path: PathBuf,
    },
    /// The key is of another algorithm.
    #[error("{} holds a {algorithm} key: upledger signs with Ed25519 keys only", path.display())]
    NotEd25519 {
        /// The file.
        path: PathBuf,
        /// The algorithm found, as OpenSSH names it.
        algorithm: String,
    },
    /// The file is not an OpenSSH private key.
    #[error("{} is not an OpenSSH private key: {reason}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A public key line (`ssh-ed25519 AAAA… comment`) that could not be read.
    #[error("{what} is not an OpenSSH Ed25519 public key: {reason}")]
    PublicKey {
        /// The file, or "the public key text".
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// The key file already exists; keys are never overwritten silently.
    #[error("{} already exists: refusing to overwrite a key", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// The key file could not be written.
    #[error("cannot write key file {}: {error}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the system said (in the message, so that it prints once).
        error: io::Error,
    },
    /// The system's random number generator failed.
    #[error("cannot generate a key: the system random number generator failed")]
    Random,
    /// An identity that cannot stand in an `allowed_signers` line.
    #[error("identity {identity:?} cannot be used in allowed_signers: {reason}")]
    Identity {
        /// The identity.
        identity: String,
        /// Why not.
        reason: &'static str,
    },
    /// A line of an `allowed_signers` file that could not be read.
    #[error("{source_name}:{line}: {reason}")]
    AllowedSigners {
        /// The file, or a description of where the text came from.
        source_name: String,
        /// The line, from 1.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// An Ed25519 public key: 32 bytes (RFC 8032).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// The key from its 32 raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        PublicKey(bytes)
    }

    /// The 32 raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses an OpenSSH public key line, `ssh-ed25519 AAAA… [comment]` (what `PATH.pub`
    /// holds); the comment is dropped.
    pub fn from_openssh(text: &str) -> Result<Self, KeyError> {
        Self::parse_line(text.trim(), "the public key text")
    }

    /// Reads an OpenSSH public key file (`PATH.pub`).
    pub fn read_openssh(path: &Path) -> Result<Self, KeyError> {
        let text = fs::read_to_string(path).map_err(|error| KeyError::Read {
            path: path.to_owned(),
            error,
        })?;
        Self::parse_line(text.trim(), &path.display().to_string())
    }

    fn parse_line(line: &str, what: &str) -> Result<Self, KeyError> {
        let error = |reason: String| KeyError::PublicKey {
            what: what.to_owned(),
            reason,
        };
        if line.contains('\n') {
            return Err(error("expected one line".to_owned()));
        }
        let key = ssh_key::PublicKey::from_openssh(line).map_err(|e| error(e.to_string()))?;
        Self::from_key_data(key.key_data()).ok_or_else(|| {
            error(format!(
                "it is a {} key; upledger uses Ed25519 keys only",
                key.algorithm()
            ))
        })
    }

    fn from_key_data(data: &KeyData) -> Option<Self> {
        data.ed25519().map(|key| PublicKey(key.0))
    }

    pub(crate) fn key_data(&self) -> KeyData {
        KeyData::Ed25519(Ed25519PublicKey(self.0))
    }

    /// The OpenSSH public key line without a comment: `ssh-ed25519 AAAA…`.
    pub fn to_openssh(&self) -> String {
        // Encoding 32 bytes into a String cannot fail; the fallback is never taken.
        ssh_key::PublicKey::from(self.key_data())
            .to_openssh()
            .unwrap_or_default()
    }

    /// The SHA-256 fingerprint as `ssh-keygen -l` prints it: `SHA256:` and unpadded base64.
    pub fn fingerprint(&self) -> String {
        self.key_data().fingerprint(HashAlg::Sha256).to_string()
    }

    /// Whether `signature` is this key's Ed25519 signature of `msg`.
    pub fn verify(&self, msg: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(msg, signature)
            .is_ok()
    }

    /// The `allowed_signers` line that lets `ssh-keygen -Y verify -I IDENTITY -n
    /// upledger-report` accept this key's report signatures, and nothing else.
    pub fn allowed_signers_line(&self, identity: &str) -> Result<String, KeyError> {
        check_identity(identity)?;
        Ok(format!(
            "{identity} namespaces=\"{REPORT_NAMESPACE}\" {}",
            self.to_openssh()
        ))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.fingerprint())
    }
}

/// An identity goes unquoted in an `allowed_signers` line, where whitespace, quotes and a
/// leading `#` would change what the line means, and `*`, `?`, `!` and `,` are pattern syntax.
fn check_identity(identity: &str) -> Result<(), KeyError> {
    let reason = if identity.is_empty() {
        Some("it is empty")
    } else if identity
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        Some("it contains whitespace")
    } else if identity.starts_with('#') {
        Some("it starts with '#'")
    } else if identity.contains(['"', ',', '*', '?', '!']) {
        Some("it contains one of \" , * ? !")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(KeyError::Identity {
            identity: identity.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// The private signing key: an Ed25519 seed, its public key and the key file's comment.
pub struct SigningKey {
    /// The seed and public key as stored (zeroed on drop by `ssh-key`).
    stored: Ed25519Keypair,
    /// The same key, ready to sign.
    pair: Ed25519KeyPair,
    public: PublicKey,
    comment: String,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("public", &self.public)
            .field("comment", &self.comment)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new key from the system's random number generator.
    pub fn generate(comment: &str) -> Result<Self, KeyError> {
        let mut seed = [0u8; 32];
        SystemRandom::new()
            .fill(&mut seed)
            .map_err(|_| KeyError::Random)?;
        let key = Self::from_seed(&seed, comment);
        seed.fill(0);
        key
    }

    /// The key of a 32-byte RFC 8032 seed (as other tools store Ed25519 keys, such as a
    /// signed-note `PRIVATE+KEY+…`).
    pub fn from_seed(seed: &[u8; 32], comment: &str) -> Result<Self, KeyError> {
        // aws-lc-rs accepts any 32 bytes as a seed; the error is for form's sake.
        let pair = Ed25519KeyPair::from_seed_unchecked(seed).map_err(|_| KeyError::Random)?;
        Ok(Self::from_parts(*seed, pair, comment))
    }

    fn from_parts(seed: [u8; 32], pair: Ed25519KeyPair, comment: &str) -> Self {
        let mut public = [0u8; 32];
        public.copy_from_slice(pair.public_key().as_ref());
        SigningKey {
            stored: Ed25519Keypair {
                public: Ed25519PublicKey(public),
                private: Ed25519PrivateKey::from_bytes(&seed),
            },
            pair,
            public: PublicKey(public),
            comment: comment.to_owned(),
        }
    }

    /// Reads an unencrypted OpenSSH Ed25519 private key (`ssh-keygen -t ed25519 -N ''`, or
    /// one written by [`SigningKey::write_openssh`]).
    pub fn read_openssh(path: &Path) -> Result<Self, KeyError> {
        let text = fs::read(path).map_err(|error| KeyError::Read {
            path: path.to_owned(),
            error,
        })?;
        let malformed = |reason: String| KeyError::Malformed {
            path: path.to_owned(),
            reason,
        };
        if text.starts_with(b"ssh-") {
            return Err(malformed(
                "it is a public key; give the private key (the file without .pub)".to_owned(),
            ));
        }
        let key = ssh_key::PrivateKey::from_openssh(&text).map_err(|e| {
            malformed(format!(
                "{e} (expected -----BEGIN OPENSSH PRIVATE KEY-----)"
            ))
        })?;
        if key.is_encrypted() {
            return Err(KeyError::Encrypted {
                path: path.to_owned(),
            });
        }
        if key.algorithm() != Algorithm::Ed25519 {
            return Err(KeyError::NotEd25519 {
                path: path.to_owned(),
                algorithm: key.algorithm().to_string(),
            });
        }
        let KeypairData::Ed25519(stored) = key.key_data() else {
            return Err(malformed("the key data is not Ed25519".to_owned()));
        };
        // Without its `ed25519` feature ssh-key does not check that the public half belongs to
        // the seed; aws-lc-rs does here, so a damaged file cannot sign under a wrong key.
        let seed = stored.private.to_bytes();
        let pair = Ed25519KeyPair::from_seed_and_public_key(&seed, &stored.public.0)
            .map_err(|_| malformed("its private and public halves do not match".to_owned()))?;
        Ok(Self::from_parts(seed, pair, key.comment()))
    }

    /// Writes the private key to `path` (mode 0600 from its creation, so it is never readable
    /// by others, not even briefly) and the public key line to `PATH.pub` (mode 0644).
    /// Refuses to replace either file.
    pub fn write_openssh(&self, path: &Path) -> Result<(), KeyError> {
        let public_path = public_path(path);
        for existing in [path, &public_path] {
            if existing.symlink_metadata().is_ok() {
                return Err(KeyError::Exists {
                    path: existing.to_owned(),
                });
            }
        }
        let write_error = |path: &Path| {
            let path = path.to_owned();
            move |error| KeyError::Write { path, error }
        };
        let private = ssh_key::PrivateKey::new(
            KeypairData::Ed25519(self.stored.clone()),
            self.comment.clone(),
        )
        .and_then(|key| key.to_openssh(LineEnding::LF))
        .map_err(|e| KeyError::Write {
            path: path.to_owned(),
            error: io::Error::other(e.to_string()),
        })?;
        write_new(path, private.as_bytes(), 0o600).map_err(write_error(path))?;
        let mut public = ssh_key::PublicKey::from(self.public.key_data());
        public.set_comment(self.comment.clone());
        let line = public.to_openssh().map_err(|e| KeyError::Write {
            path: public_path.clone(),
            error: io::Error::other(e.to_string()),
        })?;
        if let Err(error) = write_new(&public_path, format!("{line}\n").as_bytes(), 0o644) {
            // A private key without its .pub would block the next attempt for no reason.
            let _ = fs::remove_file(path);
            return Err(write_error(&public_path)(error));
        }
        Ok(())
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        self.public
    }

    /// The key file's comment (ours: the identity it was made for).
    pub fn comment(&self) -> &str {
        &self.comment
    }

    /// The Ed25519 signature of `msg` (RFC 8032: deterministic).
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        let mut signature = [0u8; 64];
        signature.copy_from_slice(self.pair.sign(msg).as_ref());
        signature
    }
}

/// Where the public key of the private key at `path` goes: `PATH.pub`, as ssh-keygen does.
pub fn public_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// Creates `path` (never an existing file) with `mode` from the start, writes and syncs it.
fn write_new(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    // The umask may have taken bits away; 0644 for the public key is what was asked. This
    // never widens the private key's mode, which `mode` already bounded at creation.
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    file.write_all(contents)?;
    file.sync_all()
}

/// One line of an `allowed_signers` file (ssh-keygen(1), ALLOWED SIGNERS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedSigner {
    /// The principal patterns (`*` and `?` wildcards, `!` negation), as written.
    pub principals: Vec<String>,
    /// The `namespaces="…"` patterns, if the line restricts them.
    pub namespaces: Option<Vec<String>>,
    /// `valid-after="…"`, kept as written: signatures carry no time to compare it with here.
    pub valid_after: Option<String>,
    /// `valid-before="…"`, kept as written.
    pub valid_before: Option<String>,
    /// The key, when it is Ed25519; lines with other keys are kept so that a shared file
    /// still reads, and never match.
    pub key: Option<PublicKey>,
}

impl AllowedSigner {
    /// Whether this line lets `identity` sign in `namespace`.
    pub fn allows(&self, identity: &str, namespace: &str) -> bool {
        match_pattern_list(identity, &self.principals)
            && self
                .namespaces
                .as_ref()
                .is_none_or(|namespaces| match_pattern_list(namespace, namespaces))
    }
}

/// A parsed `allowed_signers` file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedSigners {
    /// The signer lines, in file order (comments and blank lines dropped).
    pub signers: Vec<AllowedSigner>,
}

impl AllowedSigners {
    /// Reads and parses an `allowed_signers` file.
    pub fn read(path: &Path) -> Result<Self, KeyError> {
        let text = fs::read_to_string(path).map_err(|error| KeyError::Read {
            path: path.to_owned(),
            error,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses the text of an `allowed_signers` file; `source_name` names it in errors.
    /// `cert-authority` lines are refused: upledger signs with plain keys, and a CA line
    /// would silently never match.
    pub fn parse(text: &str, source_name: &str) -> Result<Self, KeyError> {
        let mut signers = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let signer = parse_signer_line(line).map_err(|reason| KeyError::AllowedSigners {
                source_name: source_name.to_owned(),
                line: index + 1,
                reason,
            })?;
            signers.push(signer);
        }
        Ok(AllowedSigners { signers })
    }

    /// The Ed25519 keys allowed to sign as `identity` in `namespace`, in file order (more
    /// than one during a key rotation).
    pub fn keys_for(&self, identity: &str, namespace: &str) -> Vec<PublicKey> {
        self.signers
            .iter()
            .filter(|signer| signer.allows(identity, namespace))
            .filter_map(|signer| signer.key)
            .collect()
    }
}

/// `principals [options] keytype base64 [comment]`.
fn parse_signer_line(line: &str) -> Result<AllowedSigner, String> {
    let (principals, rest) = next_token(line)?;
    let principals = unquote(principals)?;
    if rest.is_empty() {
        return Err("missing key".to_owned());
    }
    let principals: Vec<String> = principals.split(',').map(str::to_owned).collect();
    if principals.iter().any(String::is_empty) {
        return Err("empty principal".to_owned());
    }
    let (first, after) = next_token(rest)?;
    let mut signer = AllowedSigner {
        principals,
        namespaces: None,
        valid_after: None,
        valid_before: None,
        key: None,
    };
    let key_text = if is_options(first) {
        parse_options(first, &mut signer)?;
        after
    } else {
        rest
    };
    if key_text.is_empty() {
        return Err("missing key".to_owned());
    }
    let key =
        ssh_key::PublicKey::from_openssh(key_text).map_err(|e| format!("invalid key ({e})"))?;
    signer.key = PublicKey::from_key_data(key.key_data());
    Ok(signer)
}

const OPTION_NAMES: [&str; 4] = [
    "cert-authority",
    "namespaces=",
    "valid-after=",
    "valid-before=",
];

fn is_options(token: &str) -> bool {
    let lower = token.to_ascii_lowercase();
    OPTION_NAMES.iter().any(|name| lower.starts_with(name))
}

/// Options are comma-separated, values double-quoted (and may hold commas); names are
/// case-insensitive, as in OpenSSH.
fn parse_options(text: &str, signer: &mut AllowedSigner) -> Result<(), String> {
    let mut rest = text;
    while !rest.is_empty() {
        let (name, value, after) = next_option(rest)?;
        match (name.to_ascii_lowercase().as_str(), value) {
            ("cert-authority", None) => {
                return Err(
                    "cert-authority lines are not supported: upledger signs with \
                            plain Ed25519 keys, give the key itself"
                        .to_owned(),
                );
            }
            ("namespaces", Some(value)) if signer.namespaces.is_none() => {
                signer.namespaces = Some(value.split(',').map(str::to_owned).collect());
            }
            ("valid-after", Some(value)) if signer.valid_after.is_none() => {
                signer.valid_after = Some(value);
            }
            ("valid-before", Some(value)) if signer.valid_before.is_none() => {
                signer.valid_before = Some(value);
            }
            ("namespaces" | "valid-after" | "valid-before", Some(_)) => {
                return Err(format!("option {name} given twice"));
            }
            _ => return Err(format!("unsupported option {name:?}")),
        }
        rest = after;
    }
    Ok(())
}

/// `name` or `name="value"`, then the text after the following comma.
fn next_option(text: &str) -> Result<(&str, Option<String>, &str), String> {
    let name_end = text.find(['=', ',']).unwrap_or(text.len());
    let name = &text[..name_end];
    if name.is_empty() {
        return Err("empty option".to_owned());
    }
    let rest = &text[name_end..];
    let (value, rest) = match rest.strip_prefix('=') {
        Some(quoted) => {
            let body = quoted
                .strip_prefix('"')
                .ok_or_else(|| format!("option {name}: value must be in double quotes"))?;
            let end = body
                .find('"')
                .ok_or_else(|| format!("option {name}: missing closing quote"))?;
            (Some(body[..end].to_owned()), &body[end + 1..])
        }
        None => (None, rest),
    };
    let rest = if rest.is_empty() {
        rest
    } else {
        rest.strip_prefix(',')
            .ok_or_else(|| format!("option {name}: expected ',' after it"))?
    };
    Ok((name, value, rest))
}

/// The first whitespace-delimited token (a double-quoted one may hold spaces) and the rest,
/// trimmed.
fn next_token(text: &str) -> Result<(&str, &str), String> {
    let mut in_quotes = false;
    for (i, c) in text.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            c if c.is_whitespace() && !in_quotes => {
                return Ok((&text[..i], text[i..].trim_start()));
            }
            _ => {}
        }
    }
    if in_quotes {
        return Err("missing closing quote".to_owned());
    }
    Ok((text, ""))
}

fn unquote(token: &str) -> Result<&str, String> {
    match token.strip_prefix('"') {
        Some(inner) => inner
            .strip_suffix('"')
            .filter(|inner| !inner.contains('"'))
            .ok_or_else(|| "misplaced quote in principals".to_owned()),
        None if token.contains('"') => Err("misplaced quote in principals".to_owned()),
        None => Ok(token),
    }
}

/// OpenSSH's `match_pattern_list`: true if some pattern matches and no `!`-negated one does.
fn match_pattern_list(name: &str, patterns: &[String]) -> bool {
    let mut matched = false;
    for pattern in patterns {
        match pattern.strip_prefix('!') {
            Some(negated) if glob_match(negated, name) => return false,
            Some(_) => {}
            None if glob_match(pattern, name) => matched = true,
            None => {}
        }
    }
    matched
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `ssh-keygen -t ed25519 -N '' -C fixture@example` (OpenSSH 9.2).
    pub(crate) const SSH_KEYGEN_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACDCLIGDEyw+5QMVvdiTJF6rqqGe8aeEA3/2tyco57VYoAAAAJhUKyIpVCsi
KQAAAAtzc2gtZWQyNTUxOQAAACDCLIGDEyw+5QMVvdiTJF6rqqGe8aeEA3/2tyco57VYoA
AAAECQ6ySzGXNrfjiv73bxRT34r/jmhkNYw717mVmIDdnJcsIsgYMTLD7lAxW92JMkXquq
oZ7xp4QDf/a3JyjntVigAAAAD2ZpeHR1cmVAZXhhbXBsZQECAwQFBg==
-----END OPENSSH PRIVATE KEY-----
";
    /// Its `.pub`.
    pub(crate) const SSH_KEYGEN_PUB: &str = "ssh-ed25519 \
        AAAAC3NzaC1lZDI1NTE5AAAAIMIsgYMTLD7lAxW92JMkXquqoZ7xp4QDf/a3JyjntVig fixture@example";
    /// What `ssh-keygen -lf` printed for it.
    const SSH_KEYGEN_FINGERPRINT: &str = "SHA256:j8X07SHAlxpt0T6xQ/8tt5Eb3xxufnLv0FdT+9YIZYg";

    /// `ssh-keygen -t ed25519 -N secret`.
    const ENCRYPTED_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAACmFlczI1Ni1jdHIAAAAGYmNyeXB0AAAAGAAAABANRE9Fc5
x6ZGyhzPDVya+ZAAAAEAAAAAEAAAAzAAAAC3NzaC1lZDI1NTE5AAAAIH6Mdn1im+6C7b3O
3J/8znQZDKTgpkXAvSQKY9w7f10NAAAAkBojoY0EHjCEg/hWvjDDbU2SU3szY8liNemAn6
M7cmRBCWdJ0XS0gt8uQVTp4EW0mZhDG+XhXc0DQXiX0+ZyfONh6yfD5lzbS+16ETIf/eFc
9BgezoGTuPt+1Xw0vLNLLW0VPfkCEf0+Jl2aXnbKUbpqyP5DDLTvzeGi2V5dZJ94wJz/hS
fXqLk2Qwd39UdDCg==
-----END OPENSSH PRIVATE KEY-----
";

    /// `ssh-keygen -t ecdsa -N ''`.
    const ECDSA_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAaAAAABNlY2RzYS
1zaGEyLW5pc3RwMjU2AAAACG5pc3RwMjU2AAAAQQQHxUHUEwU+vBV+jy361XI37Dbdjt7y
YOjEmw8pk9qpRtGWGpYoJTYB2qOKhRQaKiYbIVSH7zSK35VqRTWLxgmcAAAAoLXxzrq18c
66AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBAfFQdQTBT68FX6P
LfrVcjfsNt2O3vJg6MSbDymT2qlG0ZYaliglNgHao4qFFBoqJhshVIfvNIrflWpFNYvGCZ
wAAAAgOLfumjJy49ym2P4f6kdptqGjEV4Yg9o5vt9Dl8XQpYoAAAACZWMBAgMEBQY=
-----END OPENSSH PRIVATE KEY-----
";

    fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, text).expect("write fixture");
        path
    }

    fn read_error(text: &str) -> String {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_file(dir.path(), "key", text);
        SigningKey::read_openssh(&path)
            .expect_err("the key should be refused")
            .to_string()
    }

    #[test]
    fn reads_a_key_made_by_ssh_keygen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_file(dir.path(), "key", SSH_KEYGEN_KEY);
        let key = SigningKey::read_openssh(&path).expect("read key");
        assert_eq!(key.comment(), "fixture@example");
        let public = PublicKey::from_openssh(SSH_KEYGEN_PUB).expect("public key");
        assert_eq!(key.public(), public);
        assert_eq!(public.fingerprint(), SSH_KEYGEN_FINGERPRINT);
        let signature = key.sign(b"message");
        assert!(public.verify(b"message", &signature));
        assert!(!public.verify(b"messagf", &signature));
        assert!(!public.verify(b"message", &signature[..63]));
    }

    #[test]
    fn generated_keys_round_trip_through_the_files_with_their_modes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("signing");
        let key = SigningKey::generate("upledger@test").expect("generate");
        key.write_openssh(&path).expect("write");
        let mode = |p: &Path| fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&public_path(&path)), 0o644);
        let again = SigningKey::read_openssh(&path).expect("read back");
        assert_eq!(again.public(), key.public());
        assert_eq!(again.comment(), "upledger@test");
        assert_eq!(again.sign(b"x"), key.sign(b"x"));
        let public = PublicKey::read_openssh(&public_path(&path)).expect("read .pub");
        assert_eq!(public, key.public());
        let line = fs::read_to_string(public_path(&path)).expect(".pub");
        assert_eq!(line, format!("{} upledger@test\n", public.to_openssh()));
    }

    #[test]
    fn two_generated_keys_differ() {
        let a = SigningKey::generate("a").expect("generate");
        let b = SigningKey::generate("b").expect("generate");
        assert_ne!(a.public(), b.public());
    }

    #[test]
    fn write_refuses_to_overwrite_either_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("signing");
        let key = SigningKey::generate("c").expect("generate");
        key.write_openssh(&path).expect("write");
        let error = key.write_openssh(&path).expect_err("overwrite");
        assert!(matches!(error, KeyError::Exists { .. }), "{error}");
        assert!(error.to_string().contains("refusing to overwrite"));

        let other = dir.path().join("other");
        fs::write(public_path(&other), "x").expect("write .pub");
        let error = key.write_openssh(&other).expect_err(".pub exists");
        assert!(error.to_string().contains("other.pub"), "{error}");
        assert!(!other.exists(), "no private key left behind");
    }

    #[test]
    fn refusals_name_the_file_and_the_reason() {
        let missing = SigningKey::read_openssh(Path::new("/nonexistent/key"))
            .expect_err("missing")
            .to_string();
        assert!(missing.contains("/nonexistent/key"), "{missing}");
        assert!(missing.contains("cannot read"), "{missing}");

        let encrypted = read_error(ENCRYPTED_KEY);
        assert!(
            encrypted.starts_with("passphrase-protected keys are not supported: "),
            "{encrypted}"
        );
        assert!(encrypted.contains("/key"), "{encrypted}");

        let ecdsa = read_error(ECDSA_KEY);
        assert!(ecdsa.contains("ecdsa-sha2-nistp256 key"), "{ecdsa}");
        assert!(ecdsa.contains("Ed25519 keys only"), "{ecdsa}");

        let garbage = read_error("not a key at all\n");
        assert!(
            garbage.contains("is not an OpenSSH private key"),
            "{garbage}"
        );

        let public = read_error(SSH_KEYGEN_PUB);
        assert!(public.contains("it is a public key"), "{public}");
    }

    #[test]
    fn a_key_whose_halves_disagree_is_refused() {
        // Swap in another public key: same format, wrong pair.
        let key = ssh_key::PrivateKey::from_openssh(SSH_KEYGEN_KEY).expect("fixture");
        let KeypairData::Ed25519(pair) = key.key_data() else {
            panic!("fixture is Ed25519");
        };
        let mut pair = pair.clone();
        pair.public.0[0] ^= 1;
        let text = ssh_key::PrivateKey::new(KeypairData::Ed25519(pair), "x")
            .and_then(|k| k.to_openssh(LineEnding::LF))
            .expect("encode");
        let error = read_error(&text);
        assert!(error.contains("do not match"), "{error}");
    }

    #[test]
    fn public_key_text_is_checked() {
        assert!(PublicKey::from_openssh("ssh-ed25519 AAAA").is_err());
        let ecdsa = ssh_key::PrivateKey::from_openssh(ECDSA_KEY)
            .expect("fixture")
            .public_key()
            .to_openssh()
            .expect("encode");
        let error = PublicKey::from_openssh(&ecdsa).expect_err("ecdsa");
        assert!(error.to_string().contains("Ed25519 keys only"), "{error}");
        let missing = PublicKey::read_openssh(Path::new("/nonexistent/k.pub")).expect_err("none");
        assert!(missing.to_string().contains("/nonexistent/k.pub"));
    }

    #[test]
    fn allowed_signers_line_names_the_report_namespace() {
        let public = PublicKey::from_openssh(SSH_KEYGEN_PUB).expect("public");
        let line = public
            .allowed_signers_line("ops@example.com")
            .expect("line");
        assert_eq!(
            line,
            "ops@example.com namespaces=\"upledger-report\" ssh-ed25519 \
             AAAAC3NzaC1lZDI1NTE5AAAAIMIsgYMTLD7lAxW92JMkXquqoZ7xp4QDf/a3JyjntVig"
        );
        let parsed = AllowedSigners::parse(&line, "line").expect("parse own line");
        assert_eq!(
            parsed.keys_for("ops@example.com", REPORT_NAMESPACE),
            vec![public]
        );
        assert!(parsed.keys_for("ops@example.com", "file").is_empty());
        for bad in ["", "a b", "#x", "a,b", "a*", "\"a\""] {
            assert!(public.allowed_signers_line(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn allowed_signers_files_are_read_as_ssh_keygen_reads_them() {
        let key_a = PublicKey::from_bytes([1; 32]).to_openssh();
        let key_b = PublicKey::from_openssh(SSH_KEYGEN_PUB)
            .expect("public")
            .to_openssh();
        let text = format!(
            "# clients of example.com\n\
             \n\
             \tops@example.com,backup@example.com {key_a} first key\n\
             *@example.com,!intruder@example.com namespaces=\"upledger-report,file\",\
             valid-after=\"20240101\",VALID-BEFORE=\"20300101Z\" {key_b}\n\
             \"quoted@example.com\" namespaces=\"git\" {key_b}\n\
             rsa@example.com ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC0\n"
        );
        let signers = AllowedSigners::parse(&text, "allowed_signers");
        // The RSA line is malformed base64 on purpose: the error names file and line.
        let error = signers.expect_err("bad rsa key").to_string();
        assert!(
            error.starts_with("allowed_signers:6: invalid key"),
            "{error}"
        );

        // A well-formed key of another algorithm is kept and never matches.
        let ecdsa = ssh_key::PrivateKey::from_openssh(ECDSA_KEY)
            .expect("fixture")
            .public_key()
            .to_openssh()
            .expect("encode");
        let text = text.replace(
            "rsa@example.com ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC0\n",
            &format!("ops@example.com {ecdsa}\n"),
        );
        let signers = AllowedSigners::parse(&text, "allowed_signers").expect("parse");
        assert_eq!(signers.signers.len(), 4);
        assert_eq!(signers.signers[3].key, None);
        let b = PublicKey::from_openssh(&key_b).expect("b");
        let a = PublicKey::from_openssh(&key_a).expect("a");
        assert_eq!(
            signers.keys_for("ops@example.com", REPORT_NAMESPACE),
            vec![a, b]
        );
        assert_eq!(signers.keys_for("backup@example.com", "anything"), vec![a]);
        assert_eq!(signers.keys_for("x@example.com", REPORT_NAMESPACE), vec![b]);
        assert!(signers.keys_for("x@example.com", "git").is_empty());
        assert!(
            signers
                .keys_for("intruder@example.com", REPORT_NAMESPACE)
                .is_empty()
        );
        assert!(
            signers
                .keys_for("x@example.org", REPORT_NAMESPACE)
                .is_empty()
        );
        assert_eq!(signers.keys_for("quoted@example.com", "git"), vec![b]);
        assert_eq!(
            signers.signers[1].valid_before.as_deref(),
            Some("20300101Z")
        );
    }

    #[test]
    fn allowed_signers_refusals() {
        let key = PublicKey::from_bytes([1; 32]).to_openssh();
        for (line, expected) in [
            (
                format!("ca@x cert-authority {key}"),
                "cert-authority lines are not supported",
            ),
            (format!("a@x namespaces=git {key}"), "double quotes"),
            (
                format!("a@x namespaces=\"git {key}"),
                "missing closing quote",
            ),
            (format!("a@x no-touch-required {key}"), "invalid key"),
            (
                format!("a@x namespaces=\"a\",namespaces=\"b\" {key}"),
                "given twice",
            ),
            ("a@x".to_owned(), "missing key"),
            ("a@x namespaces=\"git\"".to_owned(), "missing key"),
            (format!("a@x,,b@x {key}"), "empty principal"),
        ] {
            let error = AllowedSigners::parse(&format!("# c\n{line}\n"), "f")
                .expect_err(&line)
                .to_string();
            assert!(error.starts_with("f:2: "), "{error}");
            assert!(error.contains(expected), "{line}: {error}");
        }
    }

    #[test]
    fn patterns_match_like_openssh() {
        let list = |p: &[&str]| p.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(match_pattern_list("a@b", &list(&["a@b"])));
        assert!(!match_pattern_list("a@bc", &list(&["a@b"])));
        assert!(match_pattern_list("a@bc", &list(&["a@b?"])));
        assert!(match_pattern_list("anything", &list(&["*"])));
        assert!(match_pattern_list("", &list(&["*"])));
        assert!(match_pattern_list("xaaay", &list(&["x*a*y"])));
        assert!(!match_pattern_list("xaaaz", &list(&["x*a*y"])));
        assert!(!match_pattern_list("root@h", &list(&["*@h", "!root@*"])));
        assert!(!match_pattern_list("root@h", &list(&["!root@*", "*@h"])));
        assert!(!match_pattern_list("bob@h", &list(&["!root@*"])));
    }
}
