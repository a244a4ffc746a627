//! The outage note: a small file beside the ledger's database that says, while the ledger
//! cannot write, since when writes fail and which results are lost so far.
//!
//! A full disk refuses the marker that would say so, and a daemon killed meanwhile leaves no
//! trace in the ledger: without the note, the next start could only call the gap "daemon not
//! running". The file is created at start at its full size and later only overwritten in
//! place, so writing it needs no new blocks on file systems that overwrite in place (ext4,
//! xfs, tmpfs); on copy-on-write ones (btrfs, zfs) it may fail like the ledger and is then only
//! logged. The next start turns a note into a [`MarkerKind::WritesFailed`] marker and blanks it.
//!
//! [`MarkerKind::WritesFailed`]: super::MarkerKind::WritesFailed

use std::os::unix::fs::OpenOptionsExt;
use std::{
    fs::File,
    io::{Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    sync::Mutex,
};

use jiff::Timestamp;

use super::{
    LedgerError, Marker, MarkerKind, WriteOutage,
    encoding::{ms_floor, timestamp_from_ms},
};

/// The note's file name in the ledger directory (sled ignores files it does not know).
const NOTE_FILE: &str = "outage-note";
/// The note's fixed size: text, padded with spaces.
const NOTE_BYTES: usize = 512;
/// The first word of a note.
const NOTE_TAG: &str = "upledger-outage-v1";

/// The note file, created full-size and then overwritten in place.
#[derive(Debug)]
pub struct OutageNote {
    path: PathBuf,
    file: Mutex<File>,
}

/// What a note says: writes failed from `since`, as `outage` tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotedOutage {
    /// When writes started failing (or the first lost result was checked, if earlier).
    pub since: Timestamp,
    /// Until when, and what was lost.
    pub outage: WriteOutage,
    /// Whether the daemon stopped (on SIGTERM) with the outage still going on; otherwise it was
    /// killed or crashed, and `outage.until` is the last time it noted the outage.
    pub stopped: bool,
}

impl NotedOutage {
    /// The marker that records this outage in the ledger.
    pub fn marker(&self) -> Marker {
        Marker {
            at: self.since,
            kind: MarkerKind::WritesFailed(self.outage),
        }
    }

    fn encode(&self) -> String {
        let (first, last) = self
            .outage
            .lost_between
            .map_or((i64::MIN, i64::MIN), |(a, b)| (ms_floor(a), ms_floor(b)));
        format!(
            "{NOTE_TAG} since={} until={} lost={} first={first} last={last} stopped={}\n",
            ms_floor(self.since),
            ms_floor(self.outage.until),
            self.outage.lost,
            u8::from(self.stopped),
        )
    }

    fn decode(text: &str) -> Option<NotedOutage> {
        let mut words = text.split_whitespace();
        if words.next()? != NOTE_TAG {
            return None;
        }
        let mut field = |name: &str| -> Option<i64> {
            let (key, value) = words.next()?.split_once('=')?;
            (key == name).then_some(())?;
            value.parse().ok()
        };
        let since = timestamp_from_ms(field("since")?)?;
        let until = timestamp_from_ms(field("until")?)?;
        let lost = u64::try_from(field("lost")?).ok()?;
        let (first, last) = (field("first")?, field("last")?);
        let stopped = field("stopped")? == 1;
        let lost_between = if first == i64::MIN {
            None
        } else {
            Some((timestamp_from_ms(first)?, timestamp_from_ms(last)?))
        };
        Some(NotedOutage {
            since,
            outage: WriteOutage {
                until,
                lost,
                lost_between,
            },
            stopped,
        })
    }
}

impl OutageNote {
    /// Reads the note a previous run left in `ledger_dir`: `Ok(None)` when there is none or it
    /// is blank, an error when it cannot be read or is not a note.
    pub fn read(ledger_dir: &Path) -> Result<Option<NotedOutage>, LedgerError> {
        let path = ledger_dir.join(NOTE_FILE);
        let mut text = String::new();
        match File::open(&path).and_then(|mut f| f.read_to_string(&mut text)) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(LedgerError::Io { path, source }),
        }
        if text.trim().is_empty() {
            return Ok(None);
        }
        NotedOutage::decode(&text)
            .map(Some)
            .ok_or_else(|| LedgerError::Corrupt {
                path,
                context: "outage note".to_owned(),
                reason: format!("not a note: {:?}", text.trim()),
            })
    }

    /// Creates (or blanks) the note in `ledger_dir` at its full size, synced: later writes
    /// then overwrite allocated space.
    pub fn create(ledger_dir: &Path) -> Result<OutageNote, LedgerError> {
        let path = ledger_dir.join(NOTE_FILE);
        let io = |source| LedgerError::Io {
            path: path.clone(),
            source,
        };
        // Private like the rest of the ledger (0600), whatever the umask.
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        let note = OutageNote {
            path: path.clone(),
            file: Mutex::new(file),
        };
        note.put("")?;
        Ok(note)
    }

    /// Notes `outage` (replacing what was noted), synced.
    pub fn write(&self, outage: &NotedOutage) -> Result<(), LedgerError> {
        self.put(&outage.encode())
    }

    /// Blanks the note: the outage is recorded in the ledger, or over.
    pub fn clear(&self) -> Result<(), LedgerError> {
        self.put("")
    }

    fn put(&self, text: &str) -> Result<(), LedgerError> {
        let mut bytes = vec![b' '; NOTE_BYTES];
        let n = text.len().min(NOTE_BYTES);
        bytes[..n].copy_from_slice(&text.as_bytes()[..n]);
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.write_all(&bytes))
            .and_then(|()| file.sync_data())
            .map_err(|source| LedgerError::Io {
                path: self.path.clone(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_793_491_200 + second).unwrap()
    }

    #[test]
    fn a_note_survives_a_new_process_and_blanks() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(OutageNote::read(dir.path()).unwrap(), None);
        let note = OutageNote::create(dir.path()).unwrap();
        assert_eq!(OutageNote::read(dir.path()).unwrap(), None, "created blank");
        let noted = NotedOutage {
            since: at(0),
            outage: WriteOutage {
                until: at(90),
                lost: 66_100,
                lost_between: Some((at(1), at(89))),
            },
            stopped: true,
        };
        note.write(&noted).unwrap();
        let size = std::fs::metadata(dir.path().join(NOTE_FILE)).unwrap().len();
        assert_eq!(size, NOTE_BYTES as u64, "overwritten in place, never grown");
        drop(note);
        assert_eq!(OutageNote::read(dir.path()).unwrap(), Some(noted));
        // A new run blanks it once recorded.
        let note = OutageNote::create(dir.path()).unwrap();
        assert_eq!(OutageNote::read(dir.path()).unwrap(), None);
        let idle = NotedOutage {
            outage: WriteOutage {
                lost: 0,
                lost_between: None,
                ..noted.outage
            },
            stopped: false,
            ..noted
        };
        note.write(&idle).unwrap();
        assert_eq!(OutageNote::read(dir.path()).unwrap(), Some(idle));
        note.clear().unwrap();
        assert_eq!(OutageNote::read(dir.path()).unwrap(), None);
    }

    #[test]
    fn a_foreign_note_is_an_error_not_a_guess() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(NOTE_FILE), "upledger-outage-v1 since=x").unwrap();
        assert!(matches!(
            OutageNote::read(dir.path()),
            Err(LedgerError::Corrupt { .. })
        ));
    }
}
