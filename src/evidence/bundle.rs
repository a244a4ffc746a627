//! Signed reports and evidence bundles (SPEC §8): what `report --sign` and `upledger
//! evidence` hand a client, built from the ledger and its log.
//!
//! A signed report is the month document computed as of the end of the hours the log has
//! sealed (so that every result it counts is under a leaf), counting only maintenance the log
//! proves was announced in time, with `evidence {origin, tree_size, root, checkpoint,
//! config_sha256}` added, and an SSHSIG signature over its exact bytes. A bundle adds the
//! checkpoint, the covered probes' results and hour leaves with inclusion proofs (with the
//! margins back-dating reads), every control leaf, the normalised configuration, the public
//! key, and consistency proofs from the month-end checkpoints of this and the previous month.
//!
//! May use `config`, `ledger`, `query`, `report` and the other `evidence` modules.

use std::path::Path;

use base64ct::{Base64, Encoding};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::{
    EvidenceError, Progress,
    key::SigningKey,
    leaf::{HourLeaf, Leaf, export_line, hex},
    log::{LedgerNodes, config_value_name, hour_floor},
    merkle,
    note::Checkpoint,
    sshsig,
};
use crate::{
    config::{Config, NormalisedConfig},
    ledger::Ledger,
    model::ProbeName,
    query::monthly::{MaintenanceRule, MonthDocument, Selection, month_document_from},
    report::Month,
};

pub use super::key::REPORT_NAMESPACE;

/// What ties a signed report to the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceRef {
    /// The log's name.
    pub origin: String,
    /// Leaves in the checkpoint.
    pub tree_size: u64,
    /// Its root, base64.
    pub root: String,
    /// The checkpoint note, as signed.
    pub checkpoint: String,
    /// SHA-256 (hex) of the normalised configuration the report was computed with.
    pub config_sha256: String,
    /// The report is of this probe only (`--probe`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<String>,
    /// The report is of this SLA only (`--sla`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla: Option<String>,
}

/// A signed report document: the month document with the evidence reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignedDocument {
    /// The month document (SPEC §4.1 and more).
    #[serde(flatten)]
    pub document: MonthDocument,
    /// The log it is anchored in.
    pub evidence: EvidenceRef,
}

/// A report as signed: its exact bytes and the detached signature (none without a key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedReport {
    /// `report.json`.
    pub json: String,
    /// `report.json.sig`, an SSHSIG armored signature.
    pub signature: Option<String>,
}

/// One leaf of a bundle with its inclusion proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleLeaf {
    /// Its index in the log.
    pub index: u64,
    /// Its exact bytes (a JSON text).
    pub leaf: String,
    /// The inclusion proof in the checkpoint's tree, base64 hashes.
    pub proof: Vec<String>,
}

/// A consistency proof between two checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consistency {
    /// The older checkpoint note.
    pub checkpoint: String,
    /// Its size.
    pub old_size: u64,
    /// The bundle checkpoint's size.
    pub new_size: u64,
    /// The proof, base64 hashes.
    pub proof: Vec<String>,
}

/// Everything `upledger evidence` writes (file by file, see [`Bundle::write_to`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    /// The signed report.
    pub report: SignedReport,
    /// The checkpoint the report names.
    pub checkpoint: String,
    /// Export lines of the covered probes' results.
    pub results: String,
    /// JSON lines of [`BundleLeaf`]: hour leaves of the covered probes, every control leaf.
    pub leaves: String,
    /// The normalised configuration.
    pub config: String,
    /// The public key, `ssh-ed25519 AAAA… origin`, when there is one.
    pub public_key: Option<String>,
    /// The `allowed_signers` line for it (identity: the origin).
    pub allowed_signers: Option<String>,
    /// This month's end checkpoint with a proof to `checkpoint`, once the month is sealed.
    pub month_end: Option<Consistency>,
    /// Proofs to `checkpoint` from every checkpoint a signed report or bundle was anchored in
    /// before, and from the previous month's end: whichever of them a client kept, the bundle
    /// shows the log extends it.
    pub proofs: Vec<Consistency>,
}

/// File names of a bundle directory.
pub mod files {
    /// The signed report.
    pub const REPORT: &str = "report.json";
    /// Its signature.
    pub const SIGNATURE: &str = "report.json.sig";
    /// The checkpoint.
    pub const CHECKPOINT: &str = "checkpoint";
    /// Results.
    pub const RESULTS: &str = "results.jsonl";
    /// Leaves and proofs.
    pub const LEAVES: &str = "leaves.jsonl";
    /// Configuration.
    pub const CONFIG: &str = "config.json";
    /// Public key.
    pub const PUBLIC_KEY: &str = "signing_key.pub";
    /// allowed_signers line.
    pub const ALLOWED_SIGNERS: &str = "allowed_signers";
    /// This month's end checkpoint and proof.
    pub const MONTH_END: &str = "month-end.json";
    /// Proofs from earlier checkpoints, JSON lines.
    pub const CONSISTENCY: &str = "consistency.jsonl";
    /// How to check it.
    pub const README: &str = "README.txt";
}

/// The log as of the newest checkpoint: its size, root and note.
struct Anchor {
    size: u64,
    root: merkle::Hash,
    note: String,
}

/// The body of a checkpoint note (signed or not), parsed.
pub fn checkpoint_of_note(note: &str) -> Result<Checkpoint, EvidenceError> {
    let body = match note.find("\n\n") {
        Some(end) => &note[..=end],
        None => note,
    };
    Checkpoint::parse(body).map_err(|e| EvidenceError::Checkpoint(e.to_string()))
}

fn anchor(ledger: &Ledger) -> Result<Anchor, EvidenceError> {
    let (size, note) = ledger.checkpoint_at_or_before(u64::MAX)?.ok_or_else(|| {
        EvidenceError::Request(
            "the evidence log has no checkpoint yet: run the daemon (or import) first".into(),
        )
    })?;
    let checkpoint = checkpoint_of_note(&note)?;
    Ok(Anchor {
        size,
        root: checkpoint.root,
        note,
    })
}

/// The covered probes of a selection (enabled, as a report has them).
fn covered<'c>(config: &'c Config, document: &MonthDocument) -> Vec<&'c ProbeName> {
    document
        .probes
        .iter()
        .filter_map(|p| config.probe(&p.name).map(|spec| &spec.name))
        .collect()
}

/// How far around a month a probe's results are read (as `query::monthly` does, with the
/// reach of its SLAs' runs of down minutes).
fn margin(config: &Config, probe: &ProbeName) -> SignedDuration {
    config
        .probe(probe.as_str())
        .map_or(SignedDuration::ZERO, |spec| {
            crate::query::monthly::reach(config, spec)
        })
}

/// The end of the hours the log has sealed for every one of `probes`.
fn sealed_until(ledger: &Ledger, probes: &[&ProbeName]) -> Result<Timestamp, EvidenceError> {
    let mut until = Timestamp::MAX;
    for probe in probes {
        let next = ledger
            .log_cursor(probe.as_str())?
            .map_or(Timestamp::MIN, |c| c.next);
        until = until.min(next);
    }
    Ok(until)
}

/// Catches the log up, then computes and signs the report of `month` (see the module doc).
pub fn signed_report(
    ledger: &Ledger,
    config: &Config,
    key: Option<&SigningKey>,
    month: Month,
    selection: &Selection,
    now: Timestamp,
) -> Result<(SignedReport, SignedDocument), EvidenceError> {
    let anchor = anchor(ledger)?;
    // The probes first (as of now), then the document as of what the log has sealed.
    let draft = month_document_from(
        config,
        ledger,
        month,
        now,
        selection,
        MaintenanceRule::Proven,
    )
    .map_err(|e| EvidenceError::Request(e.to_string()))?;
    let probes = covered(config, &draft);
    let as_of = sealed_until(ledger, &probes)?.min(now);
    let document = month_document_from(
        config,
        ledger,
        month,
        as_of,
        selection,
        MaintenanceRule::Proven,
    )
    .map_err(|e| EvidenceError::Request(e.to_string()))?;
    let normalised = NormalisedConfig::from_config(config)?;
    let signed = SignedDocument {
        document,
        evidence: EvidenceRef {
            origin: config.evidence.origin.clone(),
            tree_size: anchor.size,
            root: Base64::encode_string(&anchor.root),
            checkpoint: anchor.note.clone(),
            config_sha256: hex(&normalised.sha256()),
            probe: selection.probe.clone(),
            sla: selection.sla.clone(),
        },
    };
    ledger.publish_checkpoint(anchor.size)?;
    let mut json = serde_json::to_string_pretty(&signed)
        .map_err(|e| EvidenceError::Request(format!("cannot write the report: {e}")))?;
    json.push('\n');
    let signature = match key {
        Some(key) => Some(
            sshsig::sign(key, REPORT_NAMESPACE, json.as_bytes())
                .map_err(|e| EvidenceError::Request(format!("cannot sign the report: {e}")))?,
        ),
        None => None,
    };
    Ok((SignedReport { json, signature }, signed))
}

/// Builds the evidence bundle of `month` for `selection` (see the module doc), telling
/// `progress` about its stages: the report, each probe's results and leaves, each leaf's proof.
pub fn build(
    ledger: &Ledger,
    config: &Config,
    key: Option<&SigningKey>,
    month: Month,
    selection: &Selection,
    now: Timestamp,
    progress: &mut dyn Progress,
) -> Result<Bundle, EvidenceError> {
    progress.stage("computing the signed report", 0);
    let (report, signed) = signed_report(ledger, config, key, month, selection, now)?;
    let anchor = anchor(ledger)?;
    let nodes = LedgerNodes(ledger);
    let period = month
        .bounds(&config.daemon.timezone)
        .map_err(|e| EvidenceError::Request(e.to_string()))?;
    let hour =
        SignedDuration::try_from(config.evidence.hour).unwrap_or(SignedDuration::from_hours(1));
    let probes = covered(config, &signed.document);
    let proof_of = |index: u64| -> Result<Vec<String>, EvidenceError> {
        Ok(merkle::inclusion_proof(index, anchor.size, &nodes)?
            .iter()
            .map(|h| Base64::encode_string(h))
            .collect())
    };
    let mut leaf_indexes: Vec<u64> = Vec::new();
    let mut results = String::new();
    progress.stage("probes' results gathered", probes.len() as u64);
    for probe in &probes {
        let margin = margin(config, probe);
        let from = hour_floor(
            period.start.checked_sub(margin).unwrap_or(period.start),
            hour,
        );
        let to = period.end.checked_add(margin).unwrap_or(period.end);
        // Whole leaves: from the leaf covering `from` to the last one starting before `to`.
        let mut start = from;
        if let Some((covering, _)) = ledger.log_hour_covering(probe.as_str(), from)? {
            start = covering;
        }
        let marks = ledger.log_hours(probe.as_str(), start, to)?;
        // Results from where the probe's leaves begin: before that (a ledger older than its
        // log) nothing commits to them.
        if let Some((first, _)) = marks.first() {
            start = start.max(*first);
        }
        let mut last_end = start;
        for (hour_start, mark) in &marks {
            leaf_indexes.push(mark.index);
            let seconds = i64::try_from(mark.seconds).unwrap_or(i64::MAX);
            let end = hour_start
                .checked_add(SignedDuration::from_secs(seconds))
                .unwrap_or(Timestamp::MAX);
            last_end = last_end.max(end);
        }
        // Amended leaves point at the ones they replace: those are in the bundle too, so the
        // verifier sees the whole story of an hour.
        for (_, mark) in &marks {
            let mut index = mark.index;
            while let Some(bytes) = ledger.log_leaf(index)? {
                let doc =
                    Leaf::decode(&bytes).map_err(|source| EvidenceError::Leaf { index, source })?;
                match doc.leaf {
                    Leaf::Hour(HourLeaf {
                        amends: Some(amended),
                        ..
                    }) if amended < index => {
                        leaf_indexes.push(amended);
                        index = amended;
                    }
                    _ => break,
                }
            }
        }
        for record in ledger.results(probe, start, last_end)? {
            results.push_str(&export_line(&record));
            results.push('\n');
        }
        progress.advance(1);
    }
    // Every control leaf: follow the chain back from the newest.
    let mut control = ledger
        .log_leaves(anchor.size.saturating_sub(1), anchor.size)?
        .into_iter()
        .next()
        .and_then(|(index, bytes)| {
            let doc = Leaf::decode(&bytes).ok()?;
            if doc.leaf.is_control() {
                Some(index)
            } else {
                doc.control
            }
        });
    let mut maintenance: Vec<u64> = Vec::new();
    while let Some(index) = control {
        if index >= anchor.size {
            break;
        }
        leaf_indexes.push(index);
        let bytes = ledger
            .log_leaf(index)?
            .ok_or(EvidenceError::MissingNode { level: 0, index })?;
        let doc = Leaf::decode(&bytes).map_err(|source| EvidenceError::Leaf { index, source })?;
        if matches!(doc.leaf, Leaf::Maintenance { .. }) {
            maintenance.push(index);
        }
        control = doc.control.filter(|previous| *previous < index);
    }
    // The newest leaf pins the head of the control chain (see `verify`).
    leaf_indexes.push(anchor.size.saturating_sub(1));
    leaf_indexes.sort_unstable();
    leaf_indexes.dedup();
    leaf_indexes.retain(|index| *index < anchor.size);
    let mut leaves = String::new();
    progress.stage("leaves proved", leaf_indexes.len() as u64);
    for index in leaf_indexes {
        let bytes = ledger
            .log_leaf(index)?
            .ok_or(EvidenceError::MissingNode { level: 0, index })?;
        let line = BundleLeaf {
            index,
            leaf: String::from_utf8_lossy(&bytes).into_owned(),
            proof: proof_of(index)?,
        };
        leaves.push_str(&serde_json::to_string(&line).unwrap_or_default());
        leaves.push('\n');
        progress.advance(1);
    }
    progress.stage("consistency proofs", 0);
    let sha = &signed.evidence.config_sha256;
    let config_json = match ledger.log_value(&config_value_name(sha))? {
        Some(json) => String::from_utf8_lossy(&json).into_owned(),
        None => {
            String::from_utf8_lossy(&NormalisedConfig::from_config(config)?.to_json()).into_owned()
        }
    };
    let public_key = key.map(|k| format!("{} {}", k.public().to_openssh(), config.evidence.origin));
    let allowed_signers = match key {
        Some(k) => Some(
            k.public()
                .allowed_signers_line(&config.evidence.origin)
                .map_err(EvidenceError::Key)?,
        ),
        None => None,
    };
    let month_end = month_end_checkpoint(ledger, &probes, period.end, &anchor)?;
    let mut proofs: Vec<Consistency> = Vec::new();
    proofs.extend(month_end_checkpoint(
        ledger,
        &probes,
        period.start,
        &anchor,
    )?);
    for size in ledger.published_sizes()? {
        if size < anchor.size && !proofs.iter().any(|p| p.old_size == size) {
            proofs.extend(consistency_from(ledger, size, &anchor)?);
        }
    }
    // Maintenance counts by the time witnesses saw its first-seen leaf (SPEC §8): the first
    // cosigned checkpoint holding each such leaf, proved consistent with the anchor.
    for index in maintenance {
        if let Some(size) = first_cosigned_holding(ledger, index, anchor.size)?
            && size < anchor.size
            && !proofs.iter().any(|p| p.old_size == size)
        {
            proofs.extend(consistency_from(ledger, size, &anchor)?);
        }
    }
    proofs.sort_by_key(|p| p.old_size);
    let mut bundle = Bundle {
        report,
        checkpoint: anchor.note.clone(),
        results,
        leaves,
        config: config_json,
        public_key,
        allowed_signers,
        month_end,
        proofs,
    };
    bundle.attach_cosignatures(ledger)?;
    Ok(bundle)
}

/// How many stored checkpoints after a leaf are looked through for a cosigned one.
const COSIGNED_SEARCH: usize = 10_000;

/// The size of the first stored checkpoint that holds leaf `index` and carries a
/// cosignature, up to `limit`.
fn first_cosigned_holding(
    ledger: &Ledger,
    index: u64,
    limit: u64,
) -> Result<Option<u64>, EvidenceError> {
    let mut from = index.saturating_add(1);
    for _ in 0..COSIGNED_SEARCH {
        let Some((size, _)) = ledger.checkpoint_at_or_after(from)? else {
            return Ok(None);
        };
        if size > limit {
            return Ok(None);
        }
        if !ledger.cosignatures(size)?.is_empty() {
            return Ok(Some(size));
        }
        from = size.saturating_add(1);
    }
    Ok(None)
}

/// `note` (the checkpoint of `size`) with the cosignatures stored for it appended.
pub fn cosigned_note(ledger: &Ledger, size: u64, note: &str) -> Result<String, EvidenceError> {
    let mut out = note.to_owned();
    for line in ledger.cosignatures(size)? {
        if !out.contains(line.trim_end()) {
            out.push_str(&line);
        }
    }
    Ok(out)
}

/// The month-end checkpoint for a month ending at `end`: the first one holding every covered
/// probe's leaf of the last hour before `end`, with a consistency proof to the anchor.
fn month_end_checkpoint(
    ledger: &Ledger,
    probes: &[&ProbeName],
    end: Timestamp,
    anchor: &Anchor,
) -> Result<Option<Consistency>, EvidenceError> {
    let last = end
        .checked_sub(SignedDuration::from_millis(1))
        .unwrap_or(end);
    let mut needed = 0u64;
    for probe in probes {
        match ledger.log_hour_covering(probe.as_str(), last)? {
            Some((_, mark)) => needed = needed.max(mark.index + 1),
            None => return Ok(None),
        }
    }
    let Some((size, _)) = ledger.checkpoint_at_or_after(needed)? else {
        return Ok(None);
    };
    consistency_from(ledger, size, anchor)
}

/// The stored checkpoint of `size` with a consistency proof to the anchor.
fn consistency_from(
    ledger: &Ledger,
    size: u64,
    anchor: &Anchor,
) -> Result<Option<Consistency>, EvidenceError> {
    let Some((found, note)) = ledger.checkpoint_at_or_before(size)? else {
        return Ok(None);
    };
    if found != size || size > anchor.size {
        return Ok(None);
    }
    let proof = merkle::consistency_proof(size, anchor.size, &LedgerNodes(ledger))?;
    Ok(Some(Consistency {
        checkpoint: note,
        old_size: size,
        new_size: anchor.size,
        proof: proof.iter().map(|h| Base64::encode_string(h)).collect(),
    }))
}

impl Bundle {
    /// Adds the cosignatures stored by now to every checkpoint in the bundle (they arrive
    /// after the checkpoint is signed, so a bundle built at once may be completed later).
    pub fn attach_cosignatures(&mut self, ledger: &Ledger) -> Result<(), EvidenceError> {
        let size = checkpoint_of_note(&self.checkpoint)?.size;
        self.checkpoint = cosigned_note(ledger, size, &self.checkpoint)?;
        if let Some(end) = &mut self.month_end {
            end.checkpoint = cosigned_note(ledger, end.old_size, &end.checkpoint)?;
        }
        for proof in &mut self.proofs {
            proof.checkpoint = cosigned_note(ledger, proof.old_size, &proof.checkpoint)?;
        }
        Ok(())
    }

    /// The size of the checkpoint the report is anchored in.
    pub fn tree_size(&self) -> Result<u64, EvidenceError> {
        Ok(checkpoint_of_note(&self.checkpoint)?.size)
    }

    /// Writes the bundle's files into `dir` (created if missing; files replaced).
    pub fn write_to(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        std::fs::create_dir_all(dir)?;
        let mut written = Vec::new();
        let mut put = |name: &str, text: &str| -> std::io::Result<()> {
            std::fs::write(dir.join(name), text)?;
            written.push(name.to_owned());
            Ok(())
        };
        put(files::REPORT, &self.report.json)?;
        if let Some(signature) = &self.report.signature {
            put(files::SIGNATURE, signature)?;
        }
        put(files::CHECKPOINT, &self.checkpoint)?;
        put(files::RESULTS, &self.results)?;
        put(files::LEAVES, &self.leaves)?;
        put(files::CONFIG, &self.config)?;
        if let Some(key) = &self.public_key {
            put(files::PUBLIC_KEY, &format!("{key}\n"))?;
        }
        if let Some(line) = &self.allowed_signers {
            put(files::ALLOWED_SIGNERS, &format!("{line}\n"))?;
        }
        if let Some(end) = &self.month_end {
            put(files::MONTH_END, &json_text(end))?;
        }
        if !self.proofs.is_empty() {
            let lines: String = self
                .proofs
                .iter()
                .map(|p| serde_json::to_string(p).unwrap_or_default() + "\n")
                .collect();
            put(files::CONSISTENCY, &lines)?;
        }
        put(files::README, README)?;
        Ok(written)
    }
}

fn json_text<T: Serialize>(value: &T) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

const README: &str = "\
An upledger evidence bundle (SPEC §8).

Check it, offline, with upledger:
    upledger verify . --allowed-signers allowed_signers --identity ORIGIN
(or --key signing_key.pub; use a copy of the vendor's key you obtained yourself, not the one in
this directory). Check the report's signature with OpenSSH alone:
    ssh-keygen -Y verify -f allowed_signers -I ORIGIN -n upledger-report \\
        -s report.json.sig < report.json

report.json      the month report, with the checkpoint it is anchored in
report.json.sig  its SSHSIG signature (namespace upledger-report)
checkpoint       the signed checkpoint (C2SP tlog-checkpoint), with witnesses' cosignatures
                 (check them: upledger verify . --witness-key W.pub --quorum 1)
results.jsonl    every result of the covered probes, as `upledger export` lines
leaves.jsonl     hour leaves of those probes and every control leaf, with inclusion proofs
config.json      the normalised configuration the figures were computed with
month-end.json   this month's end checkpoint and a consistency proof (keep it for next month)
consistency.jsonl  proofs that the log extends every checkpoint published before it
";

/// The latest checkpoint's size, for a `GET /log/consistency` answer.
pub fn consistency(ledger: &Ledger, old: u64, new: u64) -> Result<Vec<String>, EvidenceError> {
    let size = ledger.log_size()?;
    if old == 0 || old > new || new > size {
        return Err(EvidenceError::Request(format!(
            "no consistency proof from {old} to {new}: sizes must satisfy 0 < old <= new <= {size}"
        )));
    }
    Ok(merkle::consistency_proof(old, new, &LedgerNodes(ledger))?
        .iter()
        .map(|h| Base64::encode_string(h))
        .collect())
}
