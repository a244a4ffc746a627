//! `upledger verify`: checks an evidence bundle offline — no ledger, no daemon, no network —
//! and recomputes every figure of its report (SPEC §8).
//!
//! The checks run in the order a client's trust builds up: the report's signature; the
//! checkpoint's signature and that the report names it; consistency with a checkpoint the
//! client kept; every leaf's inclusion proof; the chain of control leaves (none left out) and
//! their times against their place in the log (none back-dated); every hour leaf recomputed
//! from the results, and every hour of the month under one; and last the whole report
//! recomputed with the same code `upledger report` runs (`query::monthly`), compared field by
//! field. The first discrepancy ends the check and is named: probe, hour, figure, expected,
//! found.
//!
//! May use `config`, `ledger` record types, `query`, `report` and the other `evidence`
//! modules — never a `Ledger`.

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
};

use base64ct::{Base64, Encoding};
use jiff::{SignedDuration, Timestamp};

use super::{
    Progress, Unwatched,
    bundle::{BundleLeaf, Consistency, EvidenceRef, REPORT_NAMESPACE, files},
    cosign,
    key::{AllowedSigners, PublicKey},
    leaf::{HourLeaf, Leaf, LeafDoc, hex, lines_sha256},
    merkle,
    note::{Checkpoint, Note},
    sshsig,
};
use crate::{
    config::{Config, NormalisedConfig},
    ledger::{ExclusionEntry, ExclusionRecord, ImportRecord, ResultRecord, RevocationRecord},
    model::ProbeName,
    query::{
        ResultLine,
        monthly::{DamageReport, MaintenanceRule, MonthDocument, Selection, month_document_from},
        source::RecordedSource,
    },
    report::Month,
};

/// How the verifier knows the vendor's key.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// `--key F.pub`.
    Key(PathBuf),
    /// `--allowed-signers F --identity I`.
    AllowedSigners {
        /// The file.
        path: PathBuf,
        /// The identity to look up.
        identity: String,
    },
    /// Neither: the key inside the bundle (which proves only that the bundle agrees with
    /// itself; the output says so).
    Bundle,
}

/// What `upledger verify` was asked.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The bundle directory.
    pub dir: PathBuf,
    /// The vendor's key.
    pub key: KeySource,
    /// A checkpoint the client kept (a checkpoint note, or a bundle's `month-end.json`).
    pub previous: Option<PathBuf>,
    /// Witnesses' public keys (`--witness-key`, OpenSSH `.pub` files).
    pub witness_keys: Vec<PathBuf>,
    /// How many of them must have cosigned the checkpoint (`--quorum`; default: all given).
    pub quorum: Option<usize>,
}

/// Why verification did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The bundle or the report is not what it claims (exit 1): the first discrepancy.
    #[error("invalid: {0}")]
    Invalid(String),
    /// The verifier could not run as asked (exit 2): a missing directory or key file.
    #[error("{0}")]
    Usage(String),
}

fn invalid(message: impl Into<String>) -> VerifyError {
    VerifyError::Invalid(message.into())
}

/// What a successful verification checked, a line each.
#[derive(Debug, Clone, Default)]
pub struct Verified {
    /// Lines for a person.
    pub checked: Vec<String>,
    /// Warnings that do not make the bundle invalid (the key came from the bundle itself).
    pub warnings: Vec<String>,
}

/// How far a control leaf's own time may lie before the end of an hour leaf ahead of it in
/// the log: control leaves are appended within seconds of their record, so a minute is
/// generous; beyond it the leaf was back-dated.
const TIME_TOLERANCE: SignedDuration = SignedDuration::from_secs(60);

/// Runs every check; see the module doc.
pub fn verify(options: &VerifyOptions) -> Result<Verified, VerifyError> {
    verify_watched(options, &mut Unwatched)
}

/// [`verify`], telling `progress` how far it got: a large month's bundle holds tens of
/// thousands of leaves and results per probe.
pub fn verify_watched(
    options: &VerifyOptions,
    progress: &mut dyn Progress,
) -> Result<Verified, VerifyError> {
    let dir = &options.dir;
    if !dir.is_dir() {
        return Err(VerifyError::Usage(format!(
            "{}: not a directory (give the directory `upledger evidence --out` wrote)",
            dir.display()
        )));
    }
    let mut verified = Verified::default();
    let report_bytes = read(dir, files::REPORT)?;
    let report_value: serde_json::Value = serde_json::from_slice(&report_bytes)
        .map_err(|e| invalid(format!("{}: not JSON: {e}", files::REPORT)))?;
    let evidence: EvidenceRef = report_value
        .get("evidence")
        .cloned()
        .ok_or_else(|| invalid(format!("{} has no `evidence` object", files::REPORT)))
        .and_then(|v| {
            serde_json::from_value(v)
                .map_err(|e| invalid(format!("{}: bad `evidence`: {e}", files::REPORT)))
        })?;

    // 1. The report's signature.
    let keys = vendor_keys(options, dir, &evidence.origin, &mut verified)?;
    let signature = read_text(dir, files::SIGNATURE).map_err(|_| {
        invalid(format!(
            "{} is missing: the report is not signed, nothing ties it to the vendor",
            files::SIGNATURE
        ))
    })?;
    let signer = keys
        .iter()
        .find(|key| sshsig::verify(key, REPORT_NAMESPACE, &report_bytes, &signature).is_ok())
        .ok_or_else(|| {
            invalid(format!(
                "{}: the signature does not verify with {} (the report was changed after \
                 signing, or signed with another key)",
                files::SIGNATURE,
                describe_keys(&keys)
            ))
        })?;
    verified.checked.push(format!(
        "report signature: good ({}, namespace {REPORT_NAMESPACE})",
        signer.fingerprint()
    ));

    let witnesses = witness_keys(options)?;

    // 2. The checkpoint (the bundle's may carry cosignatures the report's did not yet).
    let checkpoint_text = read_text(dir, files::CHECKPOINT)?;
    let checkpoint = verified_checkpoint(&checkpoint_text, &evidence.origin, signer)
        .map_err(|e| invalid(format!("{}: {e}", files::CHECKPOINT)))?;
    if !checkpoint_text.starts_with(&evidence.checkpoint)
        || checkpoint.size != evidence.tree_size
        || Base64::encode_string(&checkpoint.root) != evidence.root
    {
        return Err(invalid(format!(
            "{} names checkpoint {} / {}, but {} holds {} / {}",
            files::REPORT,
            evidence.tree_size,
            evidence.root,
            files::CHECKPOINT,
            checkpoint.size,
            Base64::encode_string(&checkpoint.root)
        )));
    }
    verified.checked.push(format!(
        "checkpoint: {} at size {}, signed by the same key",
        checkpoint.origin, checkpoint.size
    ));
    if witnesses.quorum > 0 {
        let found = witnesses.cosigners(&checkpoint_text);
        if found.len() < witnesses.quorum {
            let missing: Vec<String> = witnesses
                .keys
                .iter()
                .filter(|(_, key)| !found.iter().any(|(k, _)| k == key))
                .map(|(path, key)| format!("{} ({})", key.fingerprint(), path.display()))
                .collect();
            return Err(invalid(format!(
                "{}: checkpoint {} carries valid cosignatures from {} of the witness keys \
                 given, --quorum {} needs {}; no cosignature by {}: no witness vouched that \
                 this log extends what it saw before",
                files::CHECKPOINT,
                checkpoint.size,
                found.len(),
                witnesses.quorum,
                witnesses.quorum,
                missing.join(", ")
            )));
        }
        verified.checked.push(format!(
            "witnesses: {} of {} given cosigned checkpoint {} (quorum {})",
            found.len(),
            witnesses.keys.len(),
            checkpoint.size,
            witnesses.quorum
        ));
    }

    // 3. Consistency with earlier checkpoints.
    let mut proofs: Vec<Consistency> = Vec::new();
    if let Ok(text) = read_text(dir, files::MONTH_END) {
        proofs.push(
            serde_json::from_str(&text)
                .map_err(|e| invalid(format!("{}: {e}", files::MONTH_END)))?,
        );
    }
    if let Ok(text) = read_text(dir, files::CONSISTENCY) {
        for (number, line) in text.lines().enumerate() {
            if !line.trim().is_empty() {
                proofs.push(serde_json::from_str(line).map_err(|e| {
                    invalid(format!("{} line {}: {e}", files::CONSISTENCY, number + 1))
                })?);
            }
        }
    }
    for consistency in &proofs {
        check_consistency(consistency, &checkpoint, &evidence.origin, signer).map_err(|e| {
            invalid(format!(
                "the earlier checkpoint of size {}: {e}",
                consistency.old_size
            ))
        })?;
    }
    if !proofs.is_empty() {
        verified.checked.push(format!(
            "consistency: the log extends {} earlier published checkpoint(s)",
            proofs.len()
        ));
    }
    if let Some(path) = &options.previous {
        let kept = kept_checkpoint(path)?;
        let old = verified_checkpoint(&kept, &evidence.origin, signer)
            .map_err(|e| invalid(format!("{}: {e}", path.display())))?;
        let proof = proofs.iter().find(|c| c.old_size == old.size);
        if old.size == checkpoint.size {
            if old.root != checkpoint.root {
                return Err(invalid(format!(
                    "the checkpoint you kept ({}) and this bundle's are both of size {} but \
                     have different roots: this log is not an extension of it (it was \
                     rewritten)",
                    path.display(),
                    old.size
                )));
            }
        } else {
            let Some(proof) = proof else {
                return Err(invalid(format!(
                    "nothing in this bundle shows its log (size {}) extends the checkpoint \
                     you kept ({}, size {}): the vendor published that checkpoint, so a log \
                     that still holds it proves it; ask for GET /log/consistency?old={}&new={}",
                    checkpoint.size,
                    path.display(),
                    old.size,
                    old.size,
                    checkpoint.size
                )));
            };
            let hashes = decode_hashes(&proof.proof).map_err(invalid)?;
            merkle::verify_consistency(
                old.size,
                checkpoint.size,
                &old.root,
                &checkpoint.root,
                &hashes,
            )
            .map_err(|e| {
                invalid(format!(
                    "the log of this bundle (size {}) is not an extension of the checkpoint \
                     you kept ({}, size {}): {e}",
                    checkpoint.size,
                    path.display(),
                    old.size
                ))
            })?;
        }
        verified.checked.push(format!(
            "consistency: the log extends the checkpoint you kept (size {})",
            old.size
        ));
    }

    // 4. Leaves and their proofs.
    let leaves = included_leaves(dir, &checkpoint, progress)?;
    verified.checked.push(format!(
        "leaves: {} included in the checkpoint",
        leaves.len()
    ));

    // 5. The control chain, and no back-dated leaf.
    check_chain(&leaves, checkpoint.size)?;
    check_times(&leaves)?;

    // 6. Configuration.
    let config_bytes = read(dir, files::CONFIG)?;
    let config_sha = hex(&sha256(&config_bytes));
    if config_sha != evidence.config_sha256 {
        return Err(invalid(format!(
            "{} has SHA-256 {config_sha}, the report was computed with {}",
            files::CONFIG,
            evidence.config_sha256
        )));
    }
    if !leaves
        .values()
        .any(|doc| matches!(&doc.leaf, Leaf::Config { sha256, .. } if *sha256 == config_sha))
    {
        return Err(invalid(format!(
            "no configuration leaf in the log has SHA-256 {config_sha}: {} was never loaded",
            files::CONFIG
        )));
    }
    let config = NormalisedConfig::from_json(&config_bytes)
        .and_then(|normalised| normalised.into_config())
        .map_err(|e| invalid(format!("{}: {e}", files::CONFIG)))?;

    // 7. Results against hour leaves, and every hour of the month.
    let document: MonthDocument = serde_json::from_value(report_value.clone())
        .map_err(|e| invalid(format!("{}: not a month report: {e}", files::REPORT)))?;
    let month: Month = document
        .month
        .parse()
        .map_err(|e| invalid(format!("{}: month: {e}", files::REPORT)))?;
    let covered: Vec<String> = document.probes.iter().map(|p| p.name.clone()).collect();
    let results_text = read_text(dir, files::RESULTS)?;
    let results = check_results(&results_text, &leaves, &covered, &config, progress)?;
    check_complete(&leaves, &covered, document.period_start, document.as_of)?;
    verified.checked.push(format!(
        "results: {} lines, each hour's recomputed leaf matches; every hour of {} has a leaf \
         for {} probe(s)",
        results.len(),
        document.month,
        covered.len()
    ));

    // 8. The figures. With witnesses, a maintenance window's first sighting counts from when
    // a quorum of them had cosigned a checkpoint holding its leaf, not from the log's word.
    let mut notes: Vec<&str> = vec![checkpoint_text.as_str()];
    notes.extend(proofs.iter().map(|p| p.checkpoint.as_str()));
    let witnessed = witnesses.witnessed_sizes(&notes);
    let mut moved: Vec<String> = Vec::new();
    let source = recorded_source(results, &leaves, |index, window, claimed| {
        if witnesses.quorum == 0 {
            return claimed;
        }
        let seen = witnessed
            .iter()
            .filter(|(size, _)| *size > index)
            .map(|(_, at)| *at)
            .min()
            .unwrap_or(Timestamp::MAX);
        if seen > claimed {
            moved.push(format!(
                "maintenance window {window}: first seen at {claimed} per the log, cosigned by {} witness(es) only at {}",
                witnesses.quorum,
                if seen == Timestamp::MAX {
                    "no time in this bundle".to_owned()
                } else {
                    seen.to_string()
                }
            ));
        }
        seen.max(claimed)
    });
    let selection = Selection {
        probe: evidence.probe.clone(),
        sla: evidence.sla.clone(),
    };
    // As of the instant the report read up to: past the month when an SLA judges runs of
    // down minutes across its end (SPEC §10), else the month's `as_of`.
    let read_until = document.read_until.unwrap_or(document.as_of);
    progress.stage("recomputing the figures", 0);
    let recomputed = month_document_from(
        &config,
        &source,
        month,
        read_until,
        &selection,
        MaintenanceRule::Proven,
    )
    .map_err(|e| invalid(format!("the report cannot be recomputed: {e}")))?;
    let mut expected = serde_json::to_value(&recomputed)
        .map_err(|e| invalid(format!("cannot compare the figures: {e}")))?;
    let mut found = report_value;
    if let Some(object) = found.as_object_mut() {
        object.remove("evidence");
    }
    if let Some(object) = expected.as_object_mut() {
        object.remove("evidence");
    }
    if let Some(difference) = first_difference(&expected, &found, String::new()) {
        return Err(invalid(if moved.is_empty() {
            difference
        } else {
            format!("{difference} ({})", moved.join("; "))
        }));
    }
    verified.checked.push(format!(
        "figures: every figure of {} probe(s) and {} SLA(s) recomputed, identical",
        recomputed.probes.len(),
        recomputed.slas.len()
    ));
    Ok(verified)
}

fn read(dir: &Path, name: &str) -> Result<Vec<u8>, VerifyError> {
    std::fs::read(dir.join(name))
        .map_err(|e| invalid(format!("{name}: cannot read it from the bundle: {e}")))
}

fn read_text(dir: &Path, name: &str) -> Result<String, VerifyError> {
    String::from_utf8(read(dir, name)?).map_err(|_| invalid(format!("{name}: not UTF-8 text")))
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref());
    out
}

fn describe_keys(keys: &[PublicKey]) -> String {
    let prints: Vec<String> = keys.iter().map(PublicKey::fingerprint).collect();
    format!("key {}", prints.join(" or "))
}

/// The keys the report may be signed with.
fn vendor_keys(
    options: &VerifyOptions,
    dir: &Path,
    origin: &str,
    verified: &mut Verified,
) -> Result<Vec<PublicKey>, VerifyError> {
    match &options.key {
        KeySource::Key(path) => PublicKey::read_openssh(path)
            .map(|key| vec![key])
            .map_err(|e| VerifyError::Usage(e.to_string())),
        KeySource::AllowedSigners { path, identity } => {
            let signers =
                AllowedSigners::read(path).map_err(|e| VerifyError::Usage(e.to_string()))?;
            let keys = signers.keys_for(identity, REPORT_NAMESPACE);
            if keys.is_empty() {
                return Err(VerifyError::Usage(format!(
                    "{}: no key for identity {identity:?} and namespace {REPORT_NAMESPACE}",
                    path.display()
                )));
            }
            Ok(keys)
        }
        KeySource::Bundle => {
            let text = read_text(dir, files::PUBLIC_KEY)?;
            let key = PublicKey::from_openssh(text.trim())
                .map_err(|e| invalid(format!("{}: {e}", files::PUBLIC_KEY)))?;
            verified.warnings.push(format!(
                "the key used is the one inside the bundle ({}, origin {origin}): this shows \
                 the bundle agrees with itself; pass --key or --allowed-signers with a copy of \
                 the vendor's key you got yourself to know it is theirs",
                key.fingerprint()
            ));
            Ok(vec![key])
        }
    }
}

/// The witness keys a client gave and how many must cosign.
struct Witnesses {
    keys: Vec<(PathBuf, PublicKey)>,
    quorum: usize,
}

impl Witnesses {
    /// The given keys with a valid cosignature on `note`, and each one's earliest time.
    fn cosigners(&self, note: &str) -> Vec<(PublicKey, Timestamp)> {
        let Ok(parsed) = Note::parse(note) else {
            return Vec::new();
        };
        self.keys
            .iter()
            .filter_map(|(_, key)| {
                let at = cosign::cosignatures_by(&parsed, key)
                    .iter()
                    .filter_map(|c| Timestamp::from_second(i64::try_from(c.timestamp).ok()?).ok())
                    .min()?;
                Some((*key, at))
            })
            .collect()
    }

    /// For each note (already checked to be the vendor's and consistent), its size and the
    /// time by which a quorum of the witnesses had cosigned it.
    fn witnessed_sizes(&self, notes: &[&str]) -> Vec<(u64, Timestamp)> {
        if self.quorum == 0 {
            return Vec::new();
        }
        notes
            .iter()
            .filter_map(|note| {
                let size = super::bundle::checkpoint_of_note(note).ok()?.size;
                let mut times: Vec<Timestamp> =
                    self.cosigners(note).into_iter().map(|(_, at)| at).collect();
                times.sort_unstable();
                Some((size, *times.get(self.quorum - 1)?))
            })
            .collect()
    }
}

/// `--witness-key` files read, and `--quorum` checked against them.
fn witness_keys(options: &VerifyOptions) -> Result<Witnesses, VerifyError> {
    let mut keys = Vec::with_capacity(options.witness_keys.len());
    for path in &options.witness_keys {
        let key = PublicKey::read_openssh(path).map_err(|e| VerifyError::Usage(e.to_string()))?;
        // One witness given twice is still one witness towards the quorum.
        if !keys.iter().any(|(_, known)| *known == key) {
            keys.push((path.clone(), key));
        }
    }
    let quorum = options.quorum.unwrap_or(keys.len());
    if quorum > keys.len() {
        return Err(VerifyError::Usage(format!(
            "--quorum {quorum} needs at least {quorum} --witness-key (given: {})",
            keys.len()
        )));
    }
    if options.quorum == Some(0) && !keys.is_empty() {
        return Err(VerifyError::Usage(
            "--quorum 0 checks no witness: leave out --witness-key, or ask for 1 or more".into(),
        ));
    }
    Ok(Witnesses { keys, quorum })
}

/// A checkpoint note checked against the vendor's key and parsed.
fn verified_checkpoint(text: &str, origin: &str, key: &PublicKey) -> Result<Checkpoint, String> {
    let note = Note::parse(text).map_err(|e| e.to_string())?;
    let body = note
        .verify(origin, key)
        .map_err(|e| format!("not signed by {origin} with {}: {e}", key.fingerprint()))?;
    let checkpoint = Checkpoint::parse(body).map_err(|e| e.to_string())?;
    if checkpoint.origin != origin {
        return Err(format!(
            "its origin is {:?}, the report's is {origin:?}",
            checkpoint.origin
        ));
    }
    Ok(checkpoint)
}

/// The checkpoint a client kept: a note, or a bundle's `month-end.json`.
fn kept_checkpoint(path: &Path) -> Result<String, VerifyError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| VerifyError::Usage(format!("{}: {e}", path.display())))?;
    if text.trim_start().starts_with('{') {
        let consistency: Consistency = serde_json::from_str(&text)
            .map_err(|e| VerifyError::Usage(format!("{}: {e}", path.display())))?;
        return Ok(consistency.checkpoint);
    }
    Ok(text)
}

fn decode_hashes(encoded: &[String]) -> Result<Vec<merkle::Hash>, String> {
    encoded
        .iter()
        .map(|text| {
            let bytes = Base64::decode_vec(text).map_err(|e| format!("bad hash {text:?}: {e}"))?;
            <[u8; 32]>::try_from(bytes.as_slice())
                .map_err(|_| format!("bad hash {text:?}: not 32 bytes"))
        })
        .collect()
}

/// An earlier checkpoint in the bundle: signed by the key and extended by the bundle's.
fn check_consistency(
    consistency: &Consistency,
    checkpoint: &Checkpoint,
    origin: &str,
    key: &PublicKey,
) -> Result<(), String> {
    let old = verified_checkpoint(&consistency.checkpoint, origin, key)?;
    if old.size != consistency.old_size || consistency.new_size != checkpoint.size {
        return Err(format!(
            "the proof is from {} to {}, the checkpoints are of {} and {}",
            consistency.old_size, consistency.new_size, old.size, checkpoint.size
        ));
    }
    if old.size == checkpoint.size {
        return if old.root == checkpoint.root {
            Ok(())
        } else {
            Err("two checkpoints of the same size with different roots".into())
        };
    }
    let proof = decode_hashes(&consistency.proof)?;
    merkle::verify_consistency(
        old.size,
        checkpoint.size,
        &old.root,
        &checkpoint.root,
        &proof,
    )
    .map_err(|e| {
        format!(
            "the checkpoint of size {} is not extended by the one of size {}: {e}",
            old.size, checkpoint.size
        )
    })
}

/// Reads `leaves.jsonl`, checks every inclusion proof, decodes every leaf.
fn included_leaves(
    dir: &Path,
    checkpoint: &Checkpoint,
    progress: &mut dyn Progress,
) -> Result<BTreeMap<u64, LeafDoc>, VerifyError> {
    let text = read_text(dir, files::LEAVES)?;
    progress.stage("leaves checked", text.lines().count() as u64);
    let mut leaves = BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{} line {}", files::LEAVES, number + 1);
        let entry: BundleLeaf =
            serde_json::from_str(line).map_err(|e| invalid(format!("{}: {e}", at())))?;
        let doc = Leaf::decode(entry.leaf.as_bytes())
            .map_err(|e| invalid(format!("{}: leaf {}: {e}", at(), entry.index)))?;
        let proof = decode_hashes(&entry.proof).map_err(|e| invalid(format!("{}: {e}", at())))?;
        let hash = merkle::leaf_hash(entry.leaf.as_bytes());
        merkle::verify_inclusion(
            &hash,
            entry.index,
            checkpoint.size,
            &proof,
            &checkpoint.root,
        )
        .map_err(|e| {
            invalid(format!(
                "leaf {} ({}) is not in the log of the checkpoint: {e}",
                entry.index,
                describe(&doc.leaf)
            ))
        })?;
        if leaves.insert(entry.index, doc).is_some() {
            return Err(invalid(format!("{}: leaf {} twice", at(), entry.index)));
        }
        progress.advance(1);
    }
    Ok(leaves)
}

/// A leaf for a person: kind and what it names.
fn describe(leaf: &Leaf) -> String {
    match leaf {
        Leaf::Hour(h) => format!("hour leaf of {} at {}", h.probe, h.hour),
        Leaf::Maintenance { window, .. } => format!("maintenance window {window}"),
        Leaf::Exclusion { exclusion } => format!("exclusion {}", exclusion.id),
        Leaf::Revocation { revocation } => format!("revocation of {}", revocation.revokes),
        Leaf::Import { import } => format!("import of {} results", import.results),
        other => format!("{} leaf", other.kind()),
    }
}

/// Every control leaf is in the bundle: the newest leaf of the log is, and every `control`
/// index any leaf names is a control leaf that is present.
fn check_chain(leaves: &BTreeMap<u64, LeafDoc>, size: u64) -> Result<(), VerifyError> {
    let last = size.saturating_sub(1);
    if size > 0 && !leaves.contains_key(&last) {
        return Err(invalid(format!(
            "the newest leaf of the log ({last}) is not in the bundle: control leaves after \
             the last one it has could be missing"
        )));
    }
    for (index, doc) in leaves {
        if let Some(previous) = doc.control {
            match leaves.get(&previous) {
                Some(found) if previous < *index && found.leaf.is_control() => {}
                Some(_) => {
                    return Err(invalid(format!(
                        "leaf {index} names leaf {previous} as the control leaf before it, \
                         which is not one"
                    )));
                }
                None => {
                    return Err(invalid(format!(
                        "control leaf {previous} (named by leaf {index}) is missing from the \
                         bundle: a record that changes the figures (an exclusion, a \
                         revocation, a clock step…) was left out"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// The time a control leaf claims for itself.
fn claimed_time(leaf: &Leaf) -> Option<Timestamp> {
    match leaf {
        Leaf::Hour(_) => None,
        Leaf::Start { at, .. }
        | Leaf::Stop { at }
        | Leaf::Config { at, .. }
        | Leaf::ClockStep { at, .. }
        | Leaf::Key { at, .. } => Some(*at),
        Leaf::Maintenance { first_seen, .. } => Some(*first_seen),
        Leaf::Exclusion { exclusion } => Some(exclusion.recorded_at),
        Leaf::Revocation { revocation } => Some(revocation.recorded_at),
        Leaf::Import { import } => Some(import.at),
        Leaf::Damage { .. } => None,
    }
}

/// No control leaf claims a time before the end of an hour leaf ahead of it in the log (an
/// hour leaf is appended only after its hour ended), allowing for clocks set back on record.
fn check_times(leaves: &BTreeMap<u64, LeafDoc>) -> Result<(), VerifyError> {
    let mut floor: Option<(Timestamp, u64, String)> = None;
    for (index, doc) in leaves {
        match &doc.leaf {
            Leaf::Hour(h) => {
                let end = h.end();
                if floor.as_ref().is_none_or(|(at, _, _)| end > *at) {
                    floor = Some((end, *index, h.probe.clone()));
                }
            }
            Leaf::ClockStep { step_ms, .. } if *step_ms < 0 => {
                if let Some((at, _, _)) = &mut floor {
                    *at = at
                        .checked_add(SignedDuration::from_millis(*step_ms))
                        .unwrap_or(*at);
                }
            }
            leaf => {
                if let (Some(claimed), Some((at, hour_index, probe))) = (claimed_time(leaf), &floor)
                    && claimed.checked_add(TIME_TOLERANCE).is_ok_and(|t| t < *at)
                {
                    return Err(invalid(format!(
                        "leaf {index} ({}) claims {claimed}, but comes after leaf {hour_index}, \
                         the hour leaf of {probe} ending {at}, which could only be appended \
                         after that: the leaf is back-dated",
                        describe(leaf)
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Parses the results, checks each covered probe's hour leaves against them, and returns them
/// as ledger records.
fn check_results(
    text: &str,
    leaves: &BTreeMap<u64, LeafDoc>,
    covered: &[String],
    config: &Config,
    progress: &mut dyn Progress,
) -> Result<Vec<ResultRecord>, VerifyError> {
    progress.stage("results read", text.lines().count() as u64);
    // Lines per probe, in file order (which must be time order within a probe).
    let mut lines: HashMap<&str, Vec<(Timestamp, &str)>> = HashMap::new();
    let mut records = Vec::new();
    for (number, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let line: ResultLine = serde_json::from_str(raw)
            .map_err(|e| invalid(format!("{} line {}: {e}", files::RESULTS, number + 1)))?;
        let Some(name) = covered.iter().find(|name| **name == line.probe) else {
            return Err(invalid(format!(
                "{} line {}: probe {} is not covered by the report",
                files::RESULTS,
                number + 1,
                line.probe
            )));
        };
        let probe = config
            .probe(name)
            .map(|spec| spec.name.clone())
            .or_else(|| ProbeName::new(name).ok())
            .ok_or_else(|| invalid(format!("probe {name} is not in {}", files::CONFIG)))?;
        let entry = lines.entry(name.as_str()).or_default();
        if entry.last().is_some_and(|(at, _)| *at >= line.at) {
            return Err(invalid(format!(
                "{} line {}: results of {} are not in time order",
                files::RESULTS,
                number + 1,
                line.probe
            )));
        }
        entry.push((line.at, raw));
        records.push(line.into_record(probe));
        progress.advance(1);
    }
    progress.stage("probes' hours checked", covered.len() as u64);
    for probe in covered {
        let probe_lines = lines.get(probe.as_str()).map_or(&[][..], Vec::as_slice);
        check_probe_hours(probe, probe_lines, leaves)?;
        progress.advance(1);
    }
    Ok(records)
}

/// One probe's effective leaves: for each span, the leaf that speaks for it last.
fn effective_spans(
    probe: &str,
    leaves: &BTreeMap<u64, LeafDoc>,
) -> Vec<(Timestamp, Timestamp, u64)> {
    let mut spans: Vec<(Timestamp, Timestamp, u64)> = Vec::new();
    for (index, doc) in leaves {
        let Leaf::Hour(h) = &doc.leaf else { continue };
        if h.probe != probe {
            continue;
        }
        let (start, end) = (h.hour, h.end());
        let mut next = Vec::with_capacity(spans.len() + 2);
        for (a, b, i) in spans {
            if b <= start || a >= end {
                next.push((a, b, i));
                continue;
            }
            if a < start {
                next.push((a, start, i));
            }
            if b > end {
                next.push((end, b, i));
            }
        }
        next.push((start, end, *index));
        next.sort_by_key(|(a, _, _)| *a);
        spans = next;
    }
    spans
}

fn hour_leaf(leaves: &BTreeMap<u64, LeafDoc>, index: u64) -> Option<&HourLeaf> {
    match &leaves.get(&index)?.leaf {
        Leaf::Hour(h) => Some(h),
        _ => None,
    }
}

/// A probe's results against its hour leaves: each leaf that still speaks for its whole span
/// commits to exactly the results in it; what an amending leaf took over must follow an
/// import of that probe; no result lies outside every leaf.
fn check_probe_hours(
    probe: &str,
    lines: &[(Timestamp, &str)],
    leaves: &BTreeMap<u64, LeafDoc>,
) -> Result<(), VerifyError> {
    for (index, doc) in leaves {
        let Leaf::Hour(h) = &doc.leaf else { continue };
        if h.probe != probe {
            continue;
        }
        if let Some(amended) = h.amends {
            let Some(earlier) = hour_leaf(leaves, amended).filter(|e| e.probe == probe) else {
                return Err(invalid(format!(
                    "leaf {index} (hour {} of {probe}) amends leaf {amended}, which is not an \
                     hour leaf of that probe in the bundle",
                    h.hour
                )));
            };
            let imported = leaves.range(amended + 1..*index).any(|(_, d)| {
                matches!(&d.leaf, Leaf::Import { import } if import.touches(Some(probe), h.hour, h.end()))
            });
            if !imported || earlier.hour > h.hour || earlier.end() < h.end() {
                return Err(invalid(format!(
                    "leaf {index} replaces the hour {} of {probe} (leaf {amended}) with no \
                     import of that hour between them: results were rewritten",
                    h.hour
                )));
            }
        }
    }
    let spans = effective_spans(probe, leaves);
    let in_span = |a: Timestamp, b: Timestamp| -> Vec<&str> {
        lines
            .iter()
            .filter(|(at, _)| *at >= a && *at < b)
            .map(|(_, raw)| *raw)
            .collect()
    };
    for (at, _) in lines {
        if !spans.iter().any(|(a, b, _)| at >= a && at < b) {
            return Err(invalid(format!(
                "the result of {probe} at {at} is under no hour leaf of the log"
            )));
        }
    }
    let mut whole: HashMap<u64, bool> = HashMap::new();
    for (a, b, index) in &spans {
        if let Some(h) = hour_leaf(leaves, *index) {
            let entire = *a == h.hour && *b == h.end();
            whole.insert(*index, entire && !whole.contains_key(index));
        }
    }
    for (a, b, index) in &spans {
        let Some(h) = hour_leaf(leaves, *index) else {
            continue;
        };
        let found = in_span(*a, *b);
        if whole.get(index).copied().unwrap_or(false) {
            let digest = hex(&lines_sha256(found.iter().copied()));
            if digest != h.sha256 || found.len() as u64 != h.count {
                return Err(invalid(format!(
                    "hour {} of {probe}: leaf {index} commits to {} result(s) with SHA-256 {}, \
                     the bundle's results give {} with {digest} (a result was changed, added \
                     or deleted)",
                    h.hour,
                    h.count,
                    h.sha256,
                    found.len()
                )));
            }
        } else if h.count == 0 && !found.is_empty() {
            return Err(invalid(format!(
                "{probe} from {a} to {b}: leaf {index} records no result, the bundle has {}",
                found.len()
            )));
        }
    }
    Ok(())
}

/// Every hour of `[start, as_of)` of every covered probe lies under one of its leaves.
fn check_complete(
    leaves: &BTreeMap<u64, LeafDoc>,
    covered: &[String],
    start: Timestamp,
    as_of: Timestamp,
) -> Result<(), VerifyError> {
    for probe in covered {
        let spans = effective_spans(probe, leaves);
        let mut at = start;
        for (a, b, _) in &spans {
            if *b <= at {
                continue;
            }
            if *a > at {
                break;
            }
            at = *b;
            if at >= as_of {
                break;
            }
        }
        if at < as_of {
            return Err(invalid(format!(
                "{probe} has no hour leaf for {at}: an hour of the month is missing from the \
                 log (a dropped hour)"
            )));
        }
    }
    Ok(())
}

/// The material a report reads, from the results and the control leaves.
/// `first_seen` gives the time a maintenance sighting counts from: its leaf index, window and
/// the time the leaf claims.
fn recorded_source(
    results: Vec<ResultRecord>,
    leaves: &BTreeMap<u64, LeafDoc>,
    mut first_seen: impl FnMut(u64, &str, Timestamp) -> Timestamp,
) -> RecordedSource {
    let mut exclusions: Vec<ExclusionRecord> = Vec::new();
    let mut revocations: Vec<RevocationRecord> = Vec::new();
    let mut sightings: BTreeMap<String, Timestamp> = BTreeMap::new();
    let mut steps = Vec::new();
    let mut damage = Vec::new();
    let mut imports: Vec<ImportRecord> = Vec::new();
    for (index, doc) in leaves {
        match &doc.leaf {
            Leaf::Exclusion { exclusion } => exclusions.push(exclusion.clone()),
            Leaf::Revocation { revocation } => revocations.push(revocation.clone()),
            Leaf::Maintenance {
                window,
                first_seen: claimed,
            } => {
                sightings.insert(window.clone(), first_seen(*index, window, *claimed));
            }
            Leaf::ClockStep { .. } => steps.extend(doc.leaf.as_clock_step()),
            Leaf::Damage {
                probe,
                from,
                to,
                what,
            } => damage.push(DamageReport {
                probe: probe.clone(),
                from: *from,
                to: *to,
                what: what.clone(),
            }),
            Leaf::Import { import } => imports.push(import.clone()),
            _ => {}
        }
    }
    let entries: Vec<ExclusionEntry> = exclusions
        .into_iter()
        .map(|exclusion| {
            let revoked = revocations
                .iter()
                .find(|r| r.revokes == exclusion.id)
                .cloned();
            ExclusionEntry { exclusion, revoked }
        })
        .collect();
    RecordedSource::new(results)
        .with_exclusions(entries)
        .with_maintenance_seen(sightings)
        .with_clock_steps(steps)
        .with_damage(damage)
        .with_imports(imports)
}

/// The first place two JSON documents differ, named for a person: the probe or SLA (arrays of
/// objects are matched by their `name`), the figure, what the evidence gives, what the report
/// says.
fn first_difference(
    expected: &serde_json::Value,
    found: &serde_json::Value,
    path: String,
) -> Option<String> {
    use serde_json::Value;
    let at = |path: &str| {
        if path.is_empty() {
            "the report".to_owned()
        } else {
            path.to_owned()
        }
    };
    match (expected, found) {
        (Value::Object(e), Value::Object(f)) => {
            for (key, value) in e {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match f.get(key) {
                    Some(other) => {
                        if let Some(d) = first_difference(value, other, child) {
                            return Some(d);
                        }
                    }
                    None => {
                        return Some(format!(
                            "{child}: the evidence gives {value}, the report has no such field"
                        ));
                    }
                }
            }
            f.keys().find(|key| !e.contains_key(*key)).map(|key| {
                format!(
                    "{}.{key}: the report has a field the evidence does not give",
                    at(&path)
                )
            })
        }
        (Value::Array(e), Value::Array(f)) => {
            for (i, value) in e.iter().enumerate() {
                let label = value
                    .get("name")
                    .and_then(Value::as_str)
                    .map_or_else(|| format!("{path}[{i}]"), |name| format!("{path}[{name}]"));
                match f.get(i) {
                    Some(other) => {
                        if let Some(d) = first_difference(value, other, label) {
                            return Some(d);
                        }
                    }
                    None => return Some(format!("{label}: missing from the report")),
                }
            }
            (f.len() > e.len()).then(|| {
                format!(
                    "{}: the report lists {} entries, the evidence gives {}",
                    at(&path),
                    f.len(),
                    e.len()
                )
            })
        }
        (e, f) if e == f => None,
        (e, f) => Some(format!(
            "{}: the evidence gives {e}, the report says {f}",
            at(&path)
        )),
    }
}
