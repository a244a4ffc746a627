//! Keeping the evidence log up to date with the ledger (SPEC §8), and signing checkpoints.
//!
//! [`catch_up`] is the one writer of the log. It is idempotent: every call appends the leaves
//! of whatever the ledger holds that the log does not yet — a new signing key or
//! configuration, maintenance sightings, exclusions and revocations, clock steps, damage,
//! imports — and then each probe's leaf hours that can receive no more results, so it can be
//! called after a crash, an import or a restart and the log ends up the same. All it appends in
//! one call is one atomic write (see `ledger::log`); a checkpoint is signed only after that
//! write is durable, and only for a tree the previous checkpoint's tree is a prefix of.
//!
//! Hashing happens here, off the check path: the daemon calls this from its own task.
//! May use `config`, `ledger`, `query` and the other `evidence` modules.

use std::collections::HashMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::{
    EvidenceError,
    key::SigningKey,
    leaf::{HourLeaf, Leaf, export_line, hex, lines_sha256},
    merkle::{self, Hash, NodeSource},
    note::{Checkpoint, sign_note},
};
use crate::{
    config::{Config, NormalisedConfig},
    ledger::{HourCursor, HourMark, ImportRecord, Ledger, LedgerError, LogAppend},
    model::ProbeName,
    report::Month,
};

/// Kinds of records whose leaf is marked in the log (see `ledger::log`).
const MAINTENANCE: u8 = b'm';
const EXCLUSION: u8 = b'x';
const REVOCATION: u8 = b'r';
const CLOCK_STEP: u8 = b'c';
const DAMAGE: u8 = b'd';
const IMPORT: u8 = b'i';

/// Named values: the last configuration and key leafed, and each configuration's JSON.
const CONFIG_VALUE: &str = "config";
const KEY_VALUE: &str = "key";

/// The stored normalised configuration whose SHA-256 is `sha256` (hex).
pub fn config_value_name(sha256: &str) -> String {
    format!("config/{sha256}")
}

/// How long after a leaf hour ends, beyond the probe's timeout, its leaf waits: results are
/// written by the recorder's next commit, a moment after the check ends.
const COMMIT_MARGIN: Duration = Duration::from_secs(2);

/// What one [`catch_up`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatchUp {
    /// Leaves appended.
    pub appended: u64,
    /// Size of the log after.
    pub size: u64,
    /// The checkpoint signed (its size), if one was.
    pub checkpoint: Option<u64>,
}

/// The log's stored nodes, seen through the nodes of an append not yet written.
struct Overlay<'a> {
    ledger: &'a Ledger,
    pending: HashMap<(u8, u64), Hash>,
}

impl NodeSource for Overlay<'_> {
    type Error = EvidenceError;

    fn node(&self, level: u8, index: u64) -> Result<Hash, EvidenceError> {
        if let Some(hash) = self.pending.get(&(level, index)) {
            return Ok(*hash);
        }
        LedgerNodes(self.ledger).node(level, index)
    }
}

/// The stored nodes of a ledger's log.
pub struct LedgerNodes<'a>(pub &'a Ledger);

impl NodeSource for LedgerNodes<'_> {
    type Error = EvidenceError;

    fn node(&self, level: u8, index: u64) -> Result<Hash, EvidenceError> {
        self.0
            .log_node(level, index)?
            .ok_or(EvidenceError::MissingNode { level, index })
    }
}

/// Leaves being appended, with the nodes they complete.
struct Appender<'a> {
    overlay: Overlay<'a>,
    append: LogAppend,
    size: u64,
    /// Index of the last control leaf (see [`LeafDoc::control`](super::leaf::LeafDoc)).
    control: Option<u64>,
    /// Hour cursors set by this append, by probe (looked up once per probe per catch-up: a
    /// list would make a catch-up over 10,000 probes quadratic).
    cursors: HashMap<String, HourCursor>,
}

/// The named value holding the index of the last control leaf.
const CONTROL_VALUE: &str = "control";

impl<'a> Appender<'a> {
    fn new(ledger: &'a Ledger) -> Result<Appender<'a>, EvidenceError> {
        let size = ledger.log_size()?;
        let control = ledger
            .log_value(CONTROL_VALUE)?
            .and_then(|v| Some(u64::from_be_bytes(v.as_slice().try_into().ok()?)));
        Ok(Appender {
            control,
            cursors: HashMap::new(),
            overlay: Overlay {
                ledger,
                pending: HashMap::new(),
            },
            append: LogAppend {
                size_before: size,
                ..LogAppend::default()
            },
            size,
        })
    }

    /// Appends `leaf`; returns its index.
    fn push(&mut self, leaf: &Leaf) -> Result<u64, EvidenceError> {
        let bytes = leaf.encode(self.control);
        let hash = merkle::leaf_hash(&bytes);
        let nodes = merkle::appended_nodes(self.size, hash, &self.overlay)?;
        for (level, index, node) in nodes {
            self.overlay.pending.insert((level, index), node);
            self.append.nodes.push((level, index, node));
        }
        self.append.leaves.push(bytes);
        let index = self.size;
        self.size += 1;
        if leaf.is_control() {
            self.control = Some(index);
        }
        Ok(index)
    }

    fn mark(&mut self, kind: u8, record: impl Into<Vec<u8>>, index: u64) {
        self.append.marks.push((kind, record.into(), index));
    }

    fn appended(&self) -> u64 {
        self.append.leaves.len() as u64
    }

    fn commit(mut self) -> Result<u64, EvidenceError> {
        self.append.cursors.extend(self.cursors.drain());
        if self.append.leaves.is_empty() && self.append.cursors.is_empty() {
            return Ok(self.size);
        }
        if let Some(control) = self.control {
            self.append
                .values
                .push((CONTROL_VALUE.into(), control.to_be_bytes().to_vec()));
        }
        Ok(self.overlay.ledger.log_append(&self.append)?)
    }
}

/// The signing key and the log's name, as the configuration says.
pub struct Signing<'a> {
    /// The key, when one is configured.
    pub key: Option<&'a SigningKey>,
    /// The log's origin line.
    pub origin: &'a str,
}

/// Brings the log up to date with the ledger as of `now`, then signs a checkpoint when the
/// log grew (see the module doc).
///
/// `keep_going` is asked between probes while sealing hours: a daemon that is stopping ends
/// the catch-up early, with what it sealed so far appended and signed (the rest waits for the
/// next start).
pub fn catch_up(
    ledger: &Ledger,
    config: &Config,
    signing: &Signing<'_>,
    now: Timestamp,
    keep_going: &dyn Fn() -> bool,
) -> Result<CatchUp, EvidenceError> {
    let mut appender = Appender::new(ledger)?;
    control_leaves(ledger, config, signing, now, &mut appender)?;
    hour_leaves(ledger, config, now, &mut appender, keep_going)?;
    let appended = appender.appended();
    let size = appender.commit()?;
    let checkpoint = sign_checkpoint(ledger, signing)?;
    Ok(CatchUp {
        appended,
        size,
        checkpoint,
    })
}

/// Appends a lifecycle leaf (daemon start or stop) and signs a checkpoint for it.
pub fn append_event(
    ledger: &Ledger,
    signing: &Signing<'_>,
    leaf: &Leaf,
) -> Result<CatchUp, EvidenceError> {
    let mut appender = Appender::new(ledger)?;
    appender.push(leaf)?;
    let size = appender.commit()?;
    let checkpoint = sign_checkpoint(ledger, signing)?;
    Ok(CatchUp {
        appended: 1,
        size,
        checkpoint,
    })
}

/// The root of the log at `size`.
pub fn root(ledger: &Ledger, size: u64) -> Result<Hash, EvidenceError> {
    merkle::root(size, &LedgerNodes(ledger))
}

/// The body of the checkpoint of the log at `size`.
pub fn checkpoint_body(
    ledger: &Ledger,
    origin: &str,
    size: u64,
) -> Result<Checkpoint, EvidenceError> {
    Ok(Checkpoint {
        origin: origin.to_owned(),
        size,
        root: root(ledger, size)?,
        extensions: Vec::new(),
    })
}

/// Signs and stores a checkpoint of the whole log when it is larger than the latest one,
/// after checking that the latest one's tree is a prefix of it (a checkpoint is never signed
/// for a tree that does not extend the previous one).
fn sign_checkpoint(ledger: &Ledger, signing: &Signing<'_>) -> Result<Option<u64>, EvidenceError> {
    let size = ledger.log_size()?;
    if size == 0 {
        return Ok(None);
    }
    let previous = ledger.checkpoint_at_or_before(u64::MAX)?;
    if let Some((old_size, note)) = &previous {
        if *old_size >= size {
            return Ok(None);
        }
        let old = super::bundle::checkpoint_of_note(note)
            .map_err(|e| EvidenceError::Checkpoint(format!("stored checkpoint {old_size}: {e}")))?;
        let nodes = LedgerNodes(ledger);
        let new_root = merkle::root(size, &nodes)?;
        let proof = merkle::consistency_proof(*old_size, size, &nodes)?;
        merkle::verify_consistency(*old_size, size, &old.root, &new_root, &proof).map_err(|e| {
            EvidenceError::Checkpoint(format!(
                "the log of {size} leaves does not extend the signed checkpoint of \
                     {old_size}: {e}; no checkpoint is signed for it"
            ))
        })?;
    }
    let body = checkpoint_body(ledger, signing.origin, size)?.body();
    let note = match signing.key {
        Some(key) => sign_note(&body, signing.origin, key)?,
        None => body,
    };
    ledger.put_checkpoint(size, &note)?;
    Ok(Some(size))
}

/// The leaves of everything but results that the log does not have yet.
fn control_leaves(
    ledger: &Ledger,
    config: &Config,
    signing: &Signing<'_>,
    now: Timestamp,
    appender: &mut Appender<'_>,
) -> Result<(), EvidenceError> {
    if let Some(key) = signing.key {
        let public = key.public().to_openssh();
        if ledger.log_value(KEY_VALUE)?.as_deref() != Some(public.as_bytes()) {
            appender.push(&Leaf::Key {
                at: now,
                public_key: public.clone(),
            })?;
            appender
                .append
                .values
                .push((KEY_VALUE.into(), public.into_bytes()));
        }
    }
    let normalised = NormalisedConfig::from_config(config)?;
    let json = normalised.to_json();
    let sha256 = hex(&normalised.sha256());
    if ledger.log_value(CONFIG_VALUE)?.as_deref() != Some(sha256.as_bytes()) {
        appender.push(&Leaf::Config {
            at: now,
            sha256: sha256.clone(),
        })?;
        appender
            .append
            .values
            .push((config_value_name(&sha256), json));
        appender
            .append
            .values
            .push((CONFIG_VALUE.into(), sha256.into_bytes()));
    }
    // Clock steps before the records made after them: a verifier allows for a step back
    // only from its leaf on.
    for step in ledger.clock_steps()? {
        let key = step.at.as_millisecond().to_be_bytes();
        if ledger.log_mark(CLOCK_STEP, &key)?.is_none() {
            let index = appender.push(&Leaf::clock_step(&step))?;
            appender.mark(CLOCK_STEP, key.to_vec(), index);
        }
    }
    // Keyed by window and time: an import that moves a sighting earlier (a restore) gets a
    // leaf of its own, whose place in the log shows when that happened.
    for (window, first_seen) in ledger.maintenance_sightings()? {
        let mut key = window.clone().into_bytes();
        key.push(0);
        key.extend_from_slice(&first_seen.as_millisecond().to_be_bytes());
        if ledger.log_mark(MAINTENANCE, &key)?.is_none() {
            let index = appender.push(&Leaf::Maintenance { window, first_seen })?;
            appender.mark(MAINTENANCE, key, index);
        }
    }
    for entry in ledger.exclusion_entries(Timestamp::MIN, Timestamp::MAX)? {
        let id = entry.exclusion.id.clone();
        if ledger.log_mark(EXCLUSION, id.as_bytes())?.is_none() {
            let index = appender.push(&Leaf::Exclusion {
                exclusion: entry.exclusion,
            })?;
            appender.mark(EXCLUSION, id.clone(), index);
        }
        if let Some(revocation) = entry.revoked
            && ledger.log_mark(REVOCATION, id.as_bytes())?.is_none()
        {
            let index = appender.push(&Leaf::Revocation { revocation })?;
            appender.mark(REVOCATION, id, index);
        }
    }
    for damage in ledger.damage() {
        let Some(leaf) = Leaf::damage(&damage) else {
            continue;
        };
        let key = leaf.encode(None);
        let key = lines_sha256([String::from_utf8_lossy(&key).as_ref()]);
        if ledger.log_mark(DAMAGE, &key)?.is_none() {
            let index = appender.push(&leaf)?;
            appender.mark(DAMAGE, key.to_vec(), index);
        }
    }
    let mut imported: Vec<ImportRecord> = Vec::new();
    for record in ledger.import_records()? {
        let key = import_key(&record);
        if ledger.log_mark(IMPORT, &key)?.is_none() {
            let index = appender.push(&Leaf::Import {
                import: record.clone(),
            })?;
            appender.mark(IMPORT, key.to_vec(), index);
            imported.push(record);
        }
    }
    for record in &imported {
        import_hours(ledger, config, now, record, appender)?;
    }
    Ok(())
}

/// The identity of an import record in the log: the SHA-256 of its stored JSON.
fn import_key(record: &ImportRecord) -> [u8; 32] {
    let json = serde_json::to_string(record).unwrap_or_default();
    lines_sha256([json.as_str()])
}

/// The length of a leaf hour.
fn leaf_hour(config: &Config) -> SignedDuration {
    SignedDuration::try_from(config.evidence.hour).unwrap_or(SignedDuration::from_hours(1))
}

/// `at` rounded down to a leaf hour (leaf hours are counted from the Unix epoch, so with the
/// standard hour they are UTC hours).
pub fn hour_floor(at: Timestamp, hour: SignedDuration) -> Timestamp {
    let length = hour.as_millis().max(1);
    let ms = i128::from(at.as_millisecond());
    let floored = ms.div_euclid(length) * length;
    i64::try_from(floored)
        .ok()
        .and_then(|ms| Timestamp::from_millisecond(ms).ok())
        .unwrap_or(at)
}

/// Where a probe's leaves begin when it first meets the log at `at`: the start of that
/// month (in the report time zone), so that every covered probe has a leaf for every hour of
/// every month it is reported for — the hours before its first result as a gap on record.
fn first_hour(config: &Config, at: Timestamp, hour: SignedDuration) -> Timestamp {
    let timezone = &config.daemon.timezone;
    let start = Month::containing(at, timezone)
        .bounds(timezone)
        .map_or(at, |period| period.start);
    hour_floor(start, hour)
}

/// Leaf hours of results imported before a probe's first hour leaf, and new leaves for hours
/// already on record that the import added results to (each names the leaf it amends).
fn import_hours(
    ledger: &Ledger,
    config: &Config,
    now: Timestamp,
    record: &ImportRecord,
    appender: &mut Appender<'_>,
) -> Result<(), EvidenceError> {
    let Some((first, last)) = record.span else {
        return Ok(());
    };
    let hour = leaf_hour(config);
    for name in &record.probes {
        let Some(spec) = config.probe(name) else {
            continue;
        };
        let due = due_end(now, hour, spec.timeout);
        let start = first_hour(config, first, hour);
        let end = hour_floor(last, hour)
            .checked_add(hour)
            .unwrap_or(Timestamp::MAX);
        let cursor = pending_cursor(ledger, appender, name)?;
        match cursor {
            None => {
                let next = end.min(due).max(start);
                seal_hours(ledger, &spec.name, start, next, hour, appender)?;
                set_cursor(appender, name, HourCursor { first: start, next });
            }
            Some(cursor) => {
                if start < cursor.first {
                    seal_hours(ledger, &spec.name, start, cursor.first, hour, appender)?;
                    set_cursor(
                        appender,
                        name,
                        HourCursor {
                            first: start,
                            next: cursor.next,
                        },
                    );
                }
                let from = start.max(cursor.first);
                let to = end.min(cursor.next);
                amend_hours(ledger, &spec.name, from, to, hour, appender)?;
            }
        }
    }
    Ok(())
}

/// A probe's cursor, as the append being built leaves it.
fn pending_cursor(
    ledger: &Ledger,
    appender: &Appender<'_>,
    probe: &str,
) -> Result<Option<HourCursor>, LedgerError> {
    if let Some(cursor) = appender.cursors.get(probe) {
        return Ok(Some(*cursor));
    }
    ledger.log_cursor(probe)
}

fn set_cursor(appender: &mut Appender<'_>, probe: &str, cursor: HourCursor) {
    appender.cursors.insert(probe.to_owned(), cursor);
}

/// The end of the last leaf hour a probe can receive no more results for, as of `now`.
fn due_end(now: Timestamp, hour: SignedDuration, timeout: Duration) -> Timestamp {
    let wait = SignedDuration::try_from(timeout + COMMIT_MARGIN).unwrap_or(SignedDuration::MAX);
    now.checked_sub(wait)
        .map(|sealed| hour_floor(sealed, hour))
        .unwrap_or(Timestamp::MIN)
}

/// Appends hour leaves for `[from, to)` (both on leaf-hour boundaries): one per hour with
/// results, one per run of empty hours. Results are read a day at a time, and empty hours are
/// skipped by the time of the next result, not looked at one by one: a probe meeting the log
/// late in a month seals weeks of short test hours at once.
fn seal_hours(
    ledger: &Ledger,
    probe: &ProbeName,
    from: Timestamp,
    to: Timestamp,
    hour: SignedDuration,
    appender: &mut Appender<'_>,
) -> Result<(), EvidenceError> {
    let per_chunk = (SignedDuration::from_hours(24).as_millis() / hour.as_millis().max(1)).max(1);
    let chunk = hour
        .checked_mul(i32::try_from(per_chunk).unwrap_or(1))
        .unwrap_or(hour);
    let mut empty_since: Option<Timestamp> = None;
    let mut at = from;
    while at < to {
        let chunk_end = at.checked_add(chunk).unwrap_or(Timestamp::MAX).min(to);
        let records = ledger.results(probe, at, chunk_end)?;
        let mut rest = records.as_slice();
        while let Some(first) = rest.first() {
            let start = hour_floor(first.at, hour).max(at);
            let end = start
                .checked_add(hour)
                .unwrap_or(Timestamp::MAX)
                .min(chunk_end);
            let count = rest.iter().take_while(|r| r.at < end).count();
            let (in_hour, after) = rest.split_at(count);
            if start > at || empty_since.is_some() {
                let since = empty_since.take().unwrap_or(at);
                if start > since {
                    empty_leaf(probe, since, start, appender)?;
                }
            }
            hour_leaf(probe, start, end, in_hour, None, appender)?;
            at = end;
            rest = after;
        }
        if at < chunk_end {
            empty_since.get_or_insert(at);
        }
        at = chunk_end;
    }
    if let Some(since) = empty_since {
        empty_leaf(probe, since, to, appender)?;
    }
    Ok(())
}

/// Appends the leaf of a run of hours without results: a gap on record.
fn empty_leaf(
    probe: &ProbeName,
    since: Timestamp,
    until: Timestamp,
    appender: &mut Appender<'_>,
) -> Result<(), EvidenceError> {
    hour_leaf(probe, since, until, &[], None, appender)
}

/// Appends the leaf of one hour's results.
fn hour_leaf(
    probe: &ProbeName,
    at: Timestamp,
    end: Timestamp,
    records: &[crate::ledger::ResultRecord],
    amends: Option<u64>,
    appender: &mut Appender<'_>,
) -> Result<(), EvidenceError> {
    let lines: Vec<String> = records.iter().map(export_line).collect();
    let sha256 = lines_sha256(lines.iter().map(String::as_str));
    let seconds = u64::try_from(end.duration_since(at).as_secs()).unwrap_or(0);
    let count = records.len() as u64;
    let index = appender.push(&Leaf::Hour(HourLeaf {
        probe: probe.to_string(),
        hour: at,
        seconds,
        count,
        sha256: hex(&sha256),
        amends,
    }))?;
    appender.append.hours.push((
        probe.to_string(),
        at,
        HourMark {
            index,
            count,
            seconds,
        },
    ));
    Ok(())
}

/// New leaves for the hours of `[from, to)` whose results no longer match their leaf.
fn amend_hours(
    ledger: &Ledger,
    probe: &ProbeName,
    from: Timestamp,
    to: Timestamp,
    hour: SignedDuration,
    appender: &mut Appender<'_>,
) -> Result<(), EvidenceError> {
    let hour_seconds = u64::try_from(hour.as_secs()).unwrap_or(0);
    let mut at = from;
    while at < to {
        let end = at.checked_add(hour).unwrap_or(Timestamp::MAX).min(to);
        let records = ledger.results(probe, at, end)?;
        let covering = match pending_hour_covering(appender, probe.as_str(), at) {
            Some(found) => Some(found),
            None => ledger.log_hour_covering(probe.as_str(), at)?,
        };
        let count = records.len() as u64;
        let stale = match covering {
            Some((start, mark)) => {
                let whole = start == at && mark.seconds == hour_seconds;
                !((whole && mark.count == count) || (count == 0 && mark.count == 0))
            }
            None => true,
        };
        if stale {
            hour_leaf(
                probe,
                at,
                end,
                &records,
                covering.map(|(_, mark)| mark.index),
                appender,
            )?;
        }
        at = end;
    }
    Ok(())
}

/// The leaf of the append being built that covers a probe's `at`, with its start.
fn pending_hour_covering(
    appender: &Appender<'_>,
    probe: &str,
    at: Timestamp,
) -> Option<(Timestamp, HourMark)> {
    appender
        .append
        .hours
        .iter()
        .rev()
        .find(|(name, start, mark)| {
            let seconds = i64::try_from(mark.seconds).unwrap_or(i64::MAX);
            let end = start
                .checked_add(SignedDuration::from_secs(seconds))
                .unwrap_or(Timestamp::MAX);
            name == probe && *start <= at && at < end
        })
        .map(|(_, start, mark)| (*start, *mark))
}

/// Appends every probe's due hour leaves.
fn hour_leaves(
    ledger: &Ledger,
    config: &Config,
    now: Timestamp,
    appender: &mut Appender<'_>,
    keep_going: &dyn Fn() -> bool,
) -> Result<(), EvidenceError> {
    let hour = leaf_hour(config);
    for spec in config.probes.iter().filter(|p| p.enabled) {
        if !keep_going() {
            break;
        }
        let name = spec.name.as_str();
        let due = due_end(now, hour, spec.timeout);
        match pending_cursor(ledger, appender, name)? {
            None => {
                // A probe new to the log starts at the start of the month; results it has
                // from before (a ledger kept before evidence existed) are leafed now, and
                // their place in the log shows it.
                let start = first_hour(config, now, hour).min(due);
                seal_hours(ledger, &spec.name, start, due, hour, appender)?;
                set_cursor(
                    appender,
                    name,
                    HourCursor {
                        first: start,
                        next: due,
                    },
                );
            }
            Some(cursor) if cursor.next < due => {
                seal_hours(ledger, &spec.name, cursor.next, due, hour, appender)?;
                set_cursor(
                    appender,
                    name,
                    HourCursor {
                        first: cursor.first,
                        next: due,
                    },
                );
            }
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{evidence::leaf::LeafDoc, ledger::ResultRecord, model::Outcome};

    const PROBES: &str = "[[probe]]\nname = \"web\"\nkind = \"tcp\"\naddress = \"127.0.0.1:9\"\n\
                          interval = \"30s\"\ntimeout = \"5s\"\n";

    fn ts(text: &str) -> Timestamp {
        text.parse().expect("timestamp")
    }

    /// A configuration and an empty ledger in a temporary folder.
    fn setup() -> (tempfile::TempDir, Config, Ledger) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("probes.d")).expect("probes.d");
        std::fs::write(
            dir.path().join("upledger.toml"),
            "[daemon]\nledger = \"ledger\"\n\n[evidence]\norigin = \"test/log\"\n",
        )
        .expect("main");
        std::fs::write(dir.path().join("probes.d/p.toml"), PROBES).expect("probes");
        let config = crate::config::load(&dir.path().join("upledger.toml")).expect("config");
        let ledger = Ledger::open(&dir.path().join("ledger")).expect("ledger");
        (dir, config, ledger)
    }

    /// Results of `web` every 30 s over `[from, to)`.
    fn every_30s(from: &str, to: &str) -> Vec<ResultRecord> {
        let (from, to) = (ts(from), ts(to));
        let mut records = Vec::new();
        let mut at = from;
        while at < to {
            records.push(ResultRecord {
                probe: ProbeName::new("web").expect("name"),
                at,
                latency: Duration::from_millis(3),
                outcome: Outcome::Up,
                error_class: None,
                detail: String::new(),
            });
            at += SignedDuration::from_secs(30);
        }
        records
    }

    fn leaves(ledger: &Ledger) -> Vec<LeafDoc> {
        let size = ledger.log_size().expect("size");
        ledger
            .log_leaves(0, size)
            .expect("leaves")
            .iter()
            .map(|(_, bytes)| Leaf::decode(bytes).expect("leaf"))
            .collect()
    }

    fn hours_of(docs: &[LeafDoc]) -> Vec<HourLeaf> {
        docs.iter()
            .filter_map(|doc| match &doc.leaf {
                Leaf::Hour(h) => Some(h.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn catch_up_seals_every_hour_once_and_is_idempotent() {
        let (_dir, config, ledger) = setup();
        ledger
            .append(&every_30s("2026-10-01T02:00:00Z", "2026-10-01T04:30:00Z"))
            .expect("append");
        let signing = Signing {
            key: None,
            origin: "test/log",
        };
        let now = ts("2026-10-01T05:00:00Z");
        let first = catch_up(&ledger, &config, &signing, now, &|| true).expect("catch up");
        assert!(first.appended > 0 && first.checkpoint == Some(first.size));
        let again = catch_up(&ledger, &config, &signing, now, &|| true).expect("again");
        assert_eq!((again.appended, again.checkpoint), (0, None), "nothing new");

        // From the month's start: one gap leaf for the empty hours, then one leaf per hour
        // with results; the hour in progress (04:00, timeout + margin not over) is not sealed.
        let hours = hours_of(&leaves(&ledger));
        let spans: Vec<(String, u64, u64)> = hours
            .iter()
            .map(|h| (h.hour.to_string(), h.seconds, h.count))
            .collect();
        assert_eq!(
            spans,
            vec![
                ("2026-10-01T00:00:00Z".to_owned(), 7200, 0),
                ("2026-10-01T02:00:00Z".to_owned(), 3600, 120),
                ("2026-10-01T03:00:00Z".to_owned(), 3600, 120),
            ]
        );
        let cursor = ledger.log_cursor("web").expect("cursor").expect("some");
        assert_eq!(cursor.next, ts("2026-10-01T04:00:00Z"));
        // The hour's leaf commits to its results' export lines.
        let records = ledger
            .results(
                &ProbeName::new("web").expect("name"),
                ts("2026-10-01T02:00:00Z"),
                ts("2026-10-01T03:00:00Z"),
            )
            .expect("results");
        let lines: Vec<String> = records.iter().map(export_line).collect();
        assert_eq!(
            hours[1].sha256,
            hex(&lines_sha256(lines.iter().map(String::as_str)))
        );
        // Control leaves came first: the configuration.
        assert!(matches!(leaves(&ledger)[0].leaf, Leaf::Config { .. }));
    }

    #[test]
    fn a_crash_between_appending_and_signing_signs_the_next_checkpoint_as_an_extension() {
        let (dir, config, ledger) = setup();
        let key = SigningKey::generate("test").expect("key");
        let signing = Signing {
            key: Some(&key),
            origin: "test/log",
        };
        ledger
            .append(&every_30s("2026-10-01T00:00:00Z", "2026-10-01T02:00:00Z"))
            .expect("append");
        let first = catch_up(
            &ledger,
            &config,
            &signing,
            ts("2026-10-01T01:30:00Z"),
            &|| true,
        )
        .expect("first")
        .checkpoint
        .expect("signed");
        // Leaves appended, then the process dies before signing (no checkpoint step).
        let mut appender = Appender::new(&ledger).expect("appender");
        appender
            .push(&Leaf::Stop {
                at: ts("2026-10-01T01:40:00Z"),
            })
            .expect("push");
        let crashed = appender.commit().expect("commit");
        drop(ledger);
        // sled lets go of its lock once its background threads are done: wait for it.
        let options = crate::ledger::LedgerOptions {
            lock_wait: std::time::Duration::from_secs(10),
            ..crate::ledger::LedgerOptions::default()
        };
        let ledger = Ledger::open_with(&dir.path().join("ledger"), &options).expect("reopen");
        assert_eq!(
            ledger.log_size().expect("size"),
            crashed,
            "the append is durable"
        );
        assert_eq!(ledger.checkpoint_sizes().expect("sizes"), vec![first]);

        let next = catch_up(
            &ledger,
            &config,
            &signing,
            ts("2026-10-01T02:30:00Z"),
            &|| true,
        )
        .expect("next")
        .checkpoint
        .expect("signed");
        assert!(next > crashed);
        let root_of = |size: u64| {
            let (found, note) = ledger
                .checkpoint_at_or_before(size)
                .expect("read")
                .expect("stored");
            assert_eq!(found, size);
            let note = crate::evidence::note::Note::parse(&note).expect("note");
            let body = note.verify("test/log", &key.public()).expect("signed");
            Checkpoint::parse(body).expect("checkpoint").root
        };
        let proof = merkle::consistency_proof(first, next, &LedgerNodes(&ledger)).expect("proof");
        merkle::verify_consistency(first, next, &root_of(first), &root_of(next), &proof)
            .expect("the next checkpoint extends the first");
    }

    #[test]
    fn results_imported_into_a_sealed_hour_amend_it_after_the_import_leaf() {
        let (_dir, config, ledger) = setup();
        let signing = Signing {
            key: None,
            origin: "test/log",
        };
        let mut records = every_30s("2026-10-01T00:00:00Z", "2026-10-01T02:00:00Z");
        // Every other result of the first hour is missing until the import.
        let missing: Vec<ResultRecord> = records
            .iter()
            .take(120)
            .skip(1)
            .step_by(2)
            .cloned()
            .collect();
        records.retain(|r| !missing.contains(r));
        ledger.append(&records).expect("append");
        catch_up(
            &ledger,
            &config,
            &signing,
            ts("2026-10-01T03:00:00Z"),
            &|| true,
        )
        .expect("first");
        let before = ledger
            .log_hour("web", ts("2026-10-01T00:00:00Z"))
            .expect("mark")
            .expect("sealed");
        assert_eq!(before.count, 60);

        let record = ImportRecord::new(ts("2026-10-01T03:10:00Z"), None, &missing, 0);
        ledger
            .import_all(&crate::ledger::ImportCommit {
                results: &missing,
                corrections: &[],
                forget_closed: &[],
                record: Some(&record),
            })
            .expect("import");
        catch_up(
            &ledger,
            &config,
            &signing,
            ts("2026-10-01T03:20:00Z"),
            &|| true,
        )
        .expect("after");
        let docs = leaves(&ledger);
        let import_at = docs
            .iter()
            .position(|d| matches!(d.leaf, Leaf::Import { .. }))
            .expect("an import leaf");
        let amended = docs
            .iter()
            .position(|d| matches!(&d.leaf, Leaf::Hour(h) if h.amends.is_some()))
            .expect("an amending hour leaf");
        assert!(import_at < amended);
        let Leaf::Hour(h) = &docs[amended].leaf else {
            unreachable!("matched above")
        };
        assert_eq!((h.count, h.amends), (120, Some(before.index)));
        // The second hour had no import and keeps its leaf.
        assert_eq!(
            hours_of(&docs)
                .iter()
                .filter(|h| h.amends.is_some())
                .count(),
            1
        );
    }
}
