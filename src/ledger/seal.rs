//! The seal: a small file beside sled's, saying how far the ledger goes, so that a ledger
//! that comes back shorter after a crash is found out instead of read as complete.
//!
//! Why: sled 0.34 recovers its log by reading it up to the first message whose checksum fails
//! and treats everything after it as a torn write. After `kill -9` (or any stop without a clean
//! close) there is no snapshot, so one changed byte anywhere in the log silently drops every
//! write after it — measured: 40 of 40 single-byte flips in such a log opened without an
//! error and lost results, down to all of them. The seal lives outside sled's files, so the
//! cut cannot take it along.
//!
//! Each write that makes results durable (append, import, prune) also stores a commit number
//! in sled's `meta` tree, and after its flush rewrites the seal: that commit number and, per
//! probe, how many results it holds and its oldest and newest result time — plus the damage
//! on record (`damage.rs`). At open, a ledger whose commit number is below the seal's lost
//! writes: every probe holding fewer results than the seal says is put on record as damaged
//! from its newest surviving result to the seal's newest (or, when the newest survived, over
//! the whole span the seal knew), and reports count that range as unknown. When the numbers
//! agree, the seal's counts are taken as they are; otherwise (first open of an older ledger,
//! a seal older than the ledger) every block is counted once.
//!
//! # File
//!
//! `seal` in the ledger directory (sled ignores files it does not know), replaced by writing
//! `seal.tmp` and renaming it, so a crash leaves the old or the new one. Like sled's own
//! flush it is not fsynced per write: a power loss can cost the last moments of both, and a
//! seal older than the ledger only weakens the check. Layout: `upledger-seal\n`, version
//! (u8 = 1), commit (u64 BE), `varint n` probes of `varint len ++ name ++ varint count ++
//! oldest ms (i64 BE) ++ newest ms (i64 BE)`, `varint n` damage records of `varint len ++ probe
//! (empty: none) ++ flags (u8: 1 from, 2 to) ++ from ms ++ to ms (i64 BE) ++ varint len ++
//! what`, then a CRC-32 of all of it (see `checksum.rs`).

use std::path::PathBuf;

use rustc_hash::FxHashMap;

use super::damage::Damage;
use super::encoding::{get_varint, ms_floor, put_varint, timestamp_from_ms};
use super::{Ledger, LedgerError, ResultRecord, Writer};
use crate::model::ProbeName;

/// The seal's file name in the ledger directory.
pub(super) const SEAL_FILE: &str = "seal";
const SEAL_TEMP: &str = "seal.tmp";
const MAGIC: &[u8] = b"upledger-seal\n";
const SEAL_VERSION: u8 = 1;
/// The key of the commit number in the `meta` tree.
const COMMIT_KEY: &[u8] = b"commit";

/// What the seal says of one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tally {
    /// Results stored.
    pub count: u64,
    /// Oldest result time, ms.
    pub oldest: i64,
    /// Newest result time, ms.
    pub newest: i64,
}

impl Tally {
    fn add(&mut self, at_ms: i64) {
        if self.count == 0 {
            (self.oldest, self.newest) = (at_ms, at_ms);
        } else {
            self.oldest = self.oldest.min(at_ms);
            self.newest = self.newest.max(at_ms);
        }
        self.count += 1;
    }
}

/// The writer's view of the seal.
#[derive(Debug, Default)]
pub(super) struct SealState {
    /// The commit number stored in sled with the last durable write.
    commit: u64,
    /// Per probe id, what it holds.
    tallies: FxHashMap<u32, Tally>,
    /// A write failed part-way: the tallies may be off, so the next seal counts again.
    stale: bool,
}

/// A seal file as read.
#[derive(Debug, PartialEq)]
struct Seal {
    commit: u64,
    probes: Vec<(ProbeName, Tally)>,
    damage: Vec<Damage>,
}

/// What was found where the seal should be.
enum Found {
    Missing,
    Unreadable(String),
    Sealed(Seal),
}

fn encode(seal: &Seal) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + seal.probes.len() * 32);
    out.extend_from_slice(MAGIC);
    out.push(SEAL_VERSION);
    out.extend_from_slice(&seal.commit.to_be_bytes());
    put_varint(&mut out, seal.probes.len() as u64);
    for (name, tally) in &seal.probes {
        put_varint(&mut out, name.as_str().len() as u64);
        out.extend_from_slice(name.as_str().as_bytes());
        put_varint(&mut out, tally.count);
        out.extend_from_slice(&tally.oldest.to_be_bytes());
        out.extend_from_slice(&tally.newest.to_be_bytes());
    }
    put_varint(&mut out, seal.damage.len() as u64);
    for damage in &seal.damage {
        let probe = damage.probe.as_ref().map_or("", ProbeName::as_str);
        put_varint(&mut out, probe.len() as u64);
        out.extend_from_slice(probe.as_bytes());
        let flags = u8::from(damage.from.is_some()) | u8::from(damage.to.is_some()) << 1;
        out.push(flags);
        out.extend_from_slice(&damage.from.map_or(0, ms_floor).to_be_bytes());
        out.extend_from_slice(&damage.to.map_or(0, ms_floor).to_be_bytes());
        put_varint(&mut out, damage.what.len() as u64);
        out.extend_from_slice(damage.what.as_bytes());
    }
    super::checksum::append_checksum(&[], &mut out);
    out
}

fn decode(bytes: &[u8]) -> Result<Seal, String> {
    let body = super::checksum::strip_checksum(&[], bytes)?;
    let rest = body.strip_prefix(MAGIC).ok_or("not a seal file")?;
    let (&version, rest) = rest.split_first().ok_or("truncated")?;
    if version != SEAL_VERSION {
        return Err(format!("unknown seal version {version}"));
    }
    let mut pos = 0;
    let take = |pos: &mut usize, n: usize| -> Result<&[u8], String> {
        let end = pos.checked_add(n).filter(|end| *end <= rest.len());
        let slice = end.map(|end| &rest[*pos..end]).ok_or("truncated")?;
        *pos += n;
        Ok(slice)
    };
    let number = |pos: &mut usize| -> Result<i64, String> {
        let mut b = [0u8; 8];
        b.copy_from_slice(take(pos, 8)?);
        Ok(i64::from_be_bytes(b))
    };
    let varint = |pos: &mut usize| get_varint(rest, pos).map_err(str::to_owned);
    let text = |pos: &mut usize| -> Result<String, String> {
        let len = usize::try_from(varint(pos)?).map_err(|e| e.to_string())?;
        String::from_utf8(take(pos, len)?.to_vec()).map_err(|_| "text is not UTF-8".to_owned())
    };
    let commit = number(&mut pos)? as u64;
    let mut probes = Vec::new();
    for _ in 0..varint(&mut pos)? {
        let name = ProbeName::stored(&text(&mut pos)?).map_err(|e| e.to_string())?;
        let count = varint(&mut pos)?;
        let oldest = number(&mut pos)?;
        let newest = number(&mut pos)?;
        probes.push((
            name,
            Tally {
                count,
                oldest,
                newest,
            },
        ));
    }
    let mut damage = Vec::new();
    for _ in 0..varint(&mut pos)? {
        let probe = text(&mut pos)?;
        let probe = if probe.is_empty() {
            None
        } else {
            Some(ProbeName::stored(&probe).map_err(|e| e.to_string())?)
        };
        let flags = take(&mut pos, 1)?[0];
        let from = number(&mut pos)?;
        let to = number(&mut pos)?;
        damage.push(Damage {
            probe,
            from: (flags & 1 != 0).then(|| timestamp_from_ms(from)).flatten(),
            to: (flags & 2 != 0).then(|| timestamp_from_ms(to)).flatten(),
            what: text(&mut pos)?,
        });
    }
    if pos != rest.len() {
        return Err("trailing bytes".to_owned());
    }
    Ok(Seal {
        commit,
        probes,
        damage,
    })
}

impl Ledger {
    fn seal_path(&self) -> PathBuf {
        self.path.join(SEAL_FILE)
    }

    fn read_seal(&self) -> Found {
        match std::fs::read(self.seal_path()) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Found::Missing,
            Err(e) => Found::Unreadable(e.to_string()),
            Ok(bytes) => match decode(&bytes) {
                Ok(seal) => Found::Sealed(seal),
                Err(reason) => Found::Unreadable(reason),
            },
        }
    }

    /// The commit number stored in sled (0 before the first sealed write).
    fn stored_commit(&self) -> Result<u64, LedgerError> {
        let stored = self
            .store()?
            .meta
            .get(COMMIT_KEY)
            .map_err(|e| self.sled_error(e))?;
        match stored {
            None => Ok(0),
            Some(bytes) => <[u8; 8]>::try_from(bytes.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| self.corrupt("commit number", "not 8 bytes")),
        }
    }

    /// Checks what the ledger holds against its seal (at open, after the journal replay):
    /// puts any shortfall on record as damage, then brings the seal up to date.
    pub(super) fn load_seal(&self, writer: &mut Writer) -> Result<(), LedgerError> {
        let commit = self.stored_commit()?;
        let found = self.read_seal();
        let sealed = match found {
            Found::Sealed(seal) => {
                for damage in &seal.damage {
                    // Known already: on record, not news to log.
                    let mut known = self.damage.lock().unwrap_or_else(|p| p.into_inner());
                    if !known.contains(damage) {
                        known.push(damage.clone());
                    }
                }
                Some(seal)
            }
            Found::Unreadable(reason) => {
                self.note_damage(Damage {
                    probe: None,
                    from: None,
                    to: None,
                    what: format!(
                        "the seal file {} is unreadable ({reason}): whether results were lost \
                         before this open cannot be told",
                        self.seal_path().display()
                    ),
                });
                None
            }
            Found::Missing if commit > 0 => {
                self.note_damage(Damage {
                    probe: None,
                    from: None,
                    to: None,
                    what: format!(
                        "the seal file {} is missing: whether results were lost before this \
                         open cannot be told",
                        self.seal_path().display()
                    ),
                });
                None
            }
            Found::Missing => None,
        };
        let names = self.all_probes()?;
        let trusted = sealed.as_ref().filter(|seal| seal.commit == commit);
        writer.seal = SealState {
            commit,
            tallies: FxHashMap::default(),
            stale: false,
        };
        if let Some(seal) = trusted {
            let ids: FxHashMap<&ProbeName, u32> = names.iter().map(|(n, id)| (n, *id)).collect();
            let mut complete = true;
            for (name, tally) in &seal.probes {
                match ids.get(name) {
                    Some(id) => {
                        writer.seal.tallies.insert(*id, *tally);
                    }
                    None => complete = false,
                }
            }
            if complete {
                return Ok(());
            }
        }
        writer.seal.tallies = self.tally_all()?;
        if let Some(seal) = sealed.as_ref().filter(|seal| seal.commit > commit) {
            self.compare_with_seal(seal, &names, &writer.seal.tallies, commit);
        }
        self.write_seal(writer);
        Ok(())
    }

    /// Puts on record every probe that holds fewer results than `seal` says it had.
    fn compare_with_seal(
        &self,
        seal: &Seal,
        names: &[(ProbeName, u32)],
        tallies: &FxHashMap<u32, Tally>,
        commit: u64,
    ) {
        let ids: FxHashMap<&ProbeName, u32> = names.iter().map(|(n, id)| (n, *id)).collect();
        let mut lost_any = false;
        for (name, sealed) in &seal.probes {
            let recovered = ids
                .get(name)
                .and_then(|id| tallies.get(id))
                .copied()
                .unwrap_or(Tally {
                    count: 0,
                    oldest: sealed.oldest,
                    newest: sealed.oldest - 1,
                });
            if recovered.count >= sealed.count {
                continue;
            }
            lost_any = true;
            // Writes are lost from the end of sled's log: results of live checks after the
            // newest one kept. When that one is the seal's newest, the lost ones were written
            // out of time order (an import) and may be anywhere the seal knew.
            let from = if recovered.newest < sealed.newest {
                recovered.newest + 1
            } else {
                sealed.oldest
            };
            self.note_damage(Damage {
                probe: Some(name.clone()),
                from: timestamp_from_ms(from),
                to: timestamp_from_ms(sealed.newest + 1),
                what: format!(
                    "{} of {} results lost: sled's log was cut short (the ledger recovered \
                     commit {commit} of {}); restore them from a backup or export if you have one",
                    sealed.count - recovered.count,
                    sealed.count,
                    seal.commit
                ),
            });
        }
        if !lost_any {
            tracing::warn!(
                ledger = %self.path.display(),
                "sled's log was cut short (commit {commit} of {}), but every result is there",
                seal.commit
            );
        }
    }

    /// Counts every probe's stored results, oldest and newest, by decoding every block.
    pub(super) fn tally_all(&self) -> Result<FxHashMap<u32, Tally>, LedgerError> {
        let mut tallies: FxHashMap<u32, Tally> = FxHashMap::default();
        for (probe, id) in self.all_probes()? {
            let mut tally = Tally {
                count: 0,
                oldest: 0,
                newest: 0,
            };
            self.visit_blocks(id, i64::MIN, i64::MAX, false, &mut |key, block, _| {
                self.decode_block_raw(&probe, key, block, &mut |record| tally.add(record.at_ms))?;
                Ok(true)
            })?;
            if tally.count > 0 {
                tallies.insert(id, tally);
            }
        }
        Ok(tallies)
    }

    /// Stores the next commit number in sled (not flushed): called by every write that makes
    /// results durable, before its flush.
    pub(super) fn bump_commit(&self, writer: &mut Writer) -> Result<(), LedgerError> {
        let next = writer.seal.commit + 1;
        self.store()?
            .meta
            .insert(COMMIT_KEY, &next.to_be_bytes()[..])
            .map_err(|e| self.sled_error(e))?;
        writer.seal.commit = next;
        Ok(())
    }

    /// Counts `records` as durable (after the flush that made them so).
    pub(super) fn tally_durable(&self, writer: &mut Writer, records: &[ResultRecord]) {
        for record in records {
            match writer.ids.get(&record.probe) {
                Some(id) => writer
                    .seal
                    .tallies
                    .entry(*id)
                    .or_insert(Tally {
                        count: 0,
                        oldest: 0,
                        newest: 0,
                    })
                    .add(record.at_ms()),
                None => writer.seal.stale = true,
            }
        }
    }

    /// Notes that a write failed part-way: the next seal counts again.
    pub(super) fn tally_unsure(&self, writer: &mut Writer) {
        writer.seal.stale = true;
    }

    /// Notes that `dropped` results of probe `id` were pruned.
    pub(super) fn tally_pruned(&self, writer: &mut Writer, id: u32, dropped: u64) {
        if let Some(tally) = writer.seal.tallies.get_mut(&id) {
            tally.count = tally.count.saturating_sub(dropped);
        }
    }

    /// Rewrites the seal from the writer's tallies (after a flush). A seal that cannot be
    /// written is logged, not an error: the results are durable, and an older seal only
    /// weakens the next check.
    pub(super) fn write_seal(&self, writer: &mut Writer) {
        if writer.seal.stale {
            match self.tally_all() {
                Ok(tallies) => {
                    writer.seal.tallies = tallies;
                    writer.seal.stale = false;
                }
                Err(e) => {
                    tracing::warn!(ledger = %self.path.display(), "seal not updated: {e}");
                    return;
                }
            }
        }
        let names: FxHashMap<u32, ProbeName> = match self.all_probes() {
            Ok(all) => all.into_iter().map(|(n, id)| (id, n)).collect(),
            Err(e) => {
                tracing::warn!(ledger = %self.path.display(), "seal not updated: {e}");
                return;
            }
        };
        let mut probes: Vec<(ProbeName, Tally)> = writer
            .seal
            .tallies
            .iter()
            .filter_map(|(id, tally)| Some((names.get(id)?.clone(), *tally)))
            .collect();
        probes.sort_by(|a, b| a.0.cmp(&b.0));
        let seal = Seal {
            commit: writer.seal.commit,
            probes,
            damage: self.damage(),
        };
        let temp = self.path.join(SEAL_TEMP);
        // Private like the rest of the ledger (0600), whatever the umask.
        let written = {
            use std::{io::Write, os::unix::fs::OpenOptionsExt};
            std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .mode(0o600)
                .open(&temp)
                .and_then(|mut file| file.write_all(&encode(&seal)))
                .and_then(|()| std::fs::rename(&temp, self.seal_path()))
        };
        if let Err(e) = written {
            tracing::warn!(
                ledger = %self.path.display(),
                "seal not updated: {}: {e}",
                self.seal_path().display()
            );
        }
    }

    /// The writer's tallies, per probe id: what the seal says once written.
    pub(super) fn sealed_tallies(&self) -> FxHashMap<u32, Tally> {
        self.lock_writer().seal.tallies.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_round_trip_and_damage_to_them_is_found() {
        let name = |s: &str| ProbeName::new(s).unwrap();
        let at = |ms: i64| timestamp_from_ms(ms).unwrap();
        let seal = Seal {
            commit: 42,
            probes: vec![(
                name("api"),
                Tally {
                    count: 7,
                    oldest: 1_000,
                    newest: 9_000,
                },
            )],
            damage: vec![
                Damage {
                    probe: Some(name("api")),
                    from: Some(at(2_000)),
                    to: Some(at(3_000)),
                    what: "lost".to_owned(),
                },
                Damage {
                    probe: None,
                    from: None,
                    to: None,
                    what: "seal unreadable".to_owned(),
                },
            ],
        };
        let bytes = encode(&seal);
        assert_eq!(decode(&bytes), Ok(seal));
        for i in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0x21;
            assert!(decode(&flipped).is_err(), "byte {i}");
        }
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut {cut}");
        }
    }
}
