//! Byte layouts of the result blocks: keys, varints and the version-1 record encoding.
//!
//! A block is one sled value holding a run of one probe's results in time order. Its key is
//! `probe_id (u32 BE) ++ start (i64 ms, sign bit flipped, BE)`, so keys sort by probe, then
//! time. Its value is a header followed by records; appends add more records at the end of the
//! value, so a block must be decodable from its start without any length prefix, and every
//! record is encoded relative to the one before it.
//!
//! Header: `version (u8)`, `base offset (varint ms from the key's start)`. Version 1 is the
//! records alone; version 2 (written since checksums came) is the same records followed by a
//! CRC-32 of `key ++ everything before it` (see `checksum.rs`), checked on every read. The
//! writer appends version-1 records in memory and adds the checksum when it stores the block;
//! version-1 blocks of older ledgers are read as they are, unchecked.
//!
//! Record (version 1):
//! - `head` varint = `zigzag(delta-of-delta ms) << 1 | same`. The delta chain starts at the
//!   base time with a previous delta of 0. `same = 1` means outcome, error class and detail
//!   all equal the previous record's, and no tag byte follows: long runs of identical
//!   outcomes cost no tag at all.
//! - `tag` (only when `same = 0`): bits 0–1 outcome, bits 2–5 error class (0 = none),
//!   bits 6–7 detail mode: 0 empty, 1 same detail as the previous record, 2 a new detail
//!   follows (3 is invalid).
//! - `latency` varint, microseconds.
//! - `detail` (mode 2 only): varint byte length, then UTF-8 bytes.
//!
//! Every record lies in `[key start, key start + MAX_BLOCK_SPAN_MS]` and times never decrease
//! within a block: range scans rely on both, and the decoder rejects bytes that break them.

use jiff::Timestamp;

use crate::model::{ErrorClass, Outcome};

/// The block encoding of the writer's memory (and of ledgers written before checksums).
pub(super) const BLOCK_ENCODING_V1: u8 = 1;

/// The block encoding this build stores: version 1's records and a checksum.
pub(super) const BLOCK_ENCODING_V2: u8 = 2;

/// The stored form of a block: `block` (version 1, as the writer builds it) as version 2, with
/// its checksum over the key it is stored (or will be sealed) under.
pub(super) fn checked_block(key: BlockKey, block: &[u8]) -> Vec<u8> {
    let mut stored = Vec::with_capacity(block.len() + super::checksum::CHECKSUM_BYTES);
    stored.extend_from_slice(block);
    if let Some(version) = stored.first_mut() {
        *version = BLOCK_ENCODING_V2;
    }
    super::checksum::append_checksum(&key.to_bytes(), &mut stored);
    stored
}

/// The widest time range one block may cover. A scan for `[from, to)` starts at block keys
/// `from - MAX_BLOCK_SPAN_MS`; changing it changes the format version.
pub(super) const MAX_BLOCK_SPAN_MS: i64 = 6 * 3600 * 1000;

/// Appends `value` as an unsigned LEB128 varint.
pub(super) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads an unsigned LEB128 varint at `*pos`, advancing it; rejects truncated and over-long
/// encodings.
pub(super) fn get_varint(bytes: &[u8], pos: &mut usize) -> Result<u64, &'static str> {
    let mut value = 0u64;
    let mut shift = 0u32;
    loop {
        let Some(&byte) = bytes.get(*pos) else {
            return Err("truncated varint");
        };
        *pos += 1;
        if shift == 63 && byte > 1 {
            return Err("varint overflows 64 bits");
        }
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
        shift += 7;
    }
}

/// Maps signed to unsigned so that small magnitudes of either sign get short varints.
pub(super) fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// Inverse of [`zigzag`].
pub(super) fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

/// Milliseconds since the epoch, rounded down (the ledger's time precision).
pub(super) fn ms_floor(at: Timestamp) -> i64 {
    // Timestamps span ±10,000 years: the millisecond count always fits an i64.
    at.as_nanosecond().div_euclid(1_000_000) as i64
}

/// Milliseconds since the epoch, rounded up: the first stored instant at or after `at`.
pub(super) fn ms_ceil(at: Timestamp) -> i64 {
    let ns = at.as_nanosecond();
    let floor = ns.div_euclid(1_000_000) as i64;
    if ns.rem_euclid(1_000_000) == 0 {
        floor
    } else {
        floor + 1
    }
}

/// The timestamp of a stored millisecond count, or `None` outside jiff's range (only corrupt
/// bytes produce such counts).
pub(super) fn timestamp_from_ms(ms: i64) -> Option<Timestamp> {
    Timestamp::from_millisecond(ms).ok()
}

/// Milliseconds as 8 bytes whose byte order is the numeric order (sign bit flipped).
pub(super) fn ordered_ms(ms: i64) -> [u8; 8] {
    ((ms as u64) ^ (1 << 63)).to_be_bytes()
}

/// Inverse of [`ordered_ms`].
pub(super) fn ms_from_ordered(bytes: [u8; 8]) -> i64 {
    (u64::from_be_bytes(bytes) ^ (1 << 63)) as i64
}

/// The key of one result block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct BlockKey {
    /// The probe's small integer id (see the `probes` tree).
    pub probe_id: u32,
    /// No record in the block is older than this, nor newer than this + `MAX_BLOCK_SPAN_MS`.
    pub start_ms: i64,
}

impl BlockKey {
    /// The 12 stored bytes.
    pub fn to_bytes(self) -> [u8; 12] {
        let mut key = [0u8; 12];
        key[..4].copy_from_slice(&self.probe_id.to_be_bytes());
        key[4..].copy_from_slice(&ordered_ms(self.start_ms));
        key
    }

    /// Parses stored key bytes; `None` when the length is wrong.
    pub fn parse(bytes: &[u8]) -> Option<BlockKey> {
        let id: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
        let start: [u8; 8] = bytes.get(4..)?.try_into().ok()?;
        Some(BlockKey {
            probe_id: u32::from_be_bytes(id),
            start_ms: ms_from_ordered(start),
        })
    }
}

/// One stored result, borrowing its detail from the block bytes (or the caller's record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RecordRef<'a> {
    /// Start of the check, ms since the epoch.
    pub at_ms: i64,
    /// Latency in microseconds.
    pub latency_us: u64,
    /// What the check found.
    pub outcome: Outcome,
    /// Why it failed, if it did.
    pub error_class: Option<ErrorClass>,
    /// The short explanation; empty when none.
    pub detail: &'a str,
}

pub(super) fn outcome_code(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::Up => 0,
        Outcome::Degraded => 1,
        Outcome::Down => 2,
        Outcome::Unknown => 3,
    }
}

pub(super) fn outcome_from_code(code: u8) -> Outcome {
    match code & 3 {
        0 => Outcome::Up,
        1 => Outcome::Degraded,
        2 => Outcome::Down,
        _ => Outcome::Unknown,
    }
}

pub(super) fn class_code(class: Option<ErrorClass>) -> u8 {
    match class {
        None => 0,
        Some(ErrorClass::Dns) => 1,
        Some(ErrorClass::Connect) => 2,
        Some(ErrorClass::Tls) => 3,
        Some(ErrorClass::Timeout) => 4,
        Some(ErrorClass::HttpStatus) => 5,
        Some(ErrorClass::Assertion) => 6,
        Some(ErrorClass::Protocol) => 7,
        Some(ErrorClass::Io) => 8,
    }
}

pub(super) fn class_from_code(code: u8) -> Result<Option<ErrorClass>, u8> {
    Ok(Some(match code {
        0 => return Ok(None),
        1 => ErrorClass::Dns,
        2 => ErrorClass::Connect,
        3 => ErrorClass::Tls,
        4 => ErrorClass::Timeout,
        5 => ErrorClass::HttpStatus,
        6 => ErrorClass::Assertion,
        7 => ErrorClass::Protocol,
        8 => ErrorClass::Io,
        other => return Err(other),
    }))
}

const DETAIL_EMPTY: u8 = 0;
const DETAIL_SAME: u8 = 1;
const DETAIL_NEW: u8 = 2;

/// The writer's memory of an open block: enough to append the next record without reading
/// the block back.
#[derive(Debug, Clone)]
pub(super) struct BlockEncoder {
    key: BlockKey,
    prev_ms: i64,
    prev_delta: i64,
    prev_kind: Option<(Outcome, Option<ErrorClass>)>,
    prev_detail: String,
    count: u32,
}

impl BlockEncoder {
    /// Starts a block at `key` whose first record is at `base_ms` (≥ the key's start), and
    /// writes its header into `out`.
    pub fn start(key: BlockKey, base_ms: i64, out: &mut Vec<u8>) -> BlockEncoder {
        debug_assert!((0..=MAX_BLOCK_SPAN_MS).contains(&(base_ms - key.start_ms)));
        out.push(BLOCK_ENCODING_V1);
        put_varint(out, (base_ms - key.start_ms) as u64);
        BlockEncoder {
            key,
            prev_ms: base_ms,
            prev_delta: 0,
            prev_kind: None,
            prev_detail: String::new(),
            count: 0,
        }
    }

    /// The block this encoder appends to.
    pub fn key(&self) -> BlockKey {
        self.key
    }

    /// How many records the block holds.
    #[cfg(test)]
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Whether a record at `at_ms` may go into this block: not full, time order kept, and
    /// within the block's span.
    pub fn accepts(&self, at_ms: i64, max_records: u32) -> bool {
        self.count < max_records
            && at_ms >= self.prev_ms
            && at_ms - self.key.start_ms <= MAX_BLOCK_SPAN_MS
    }

    /// Encodes `record` into `out`. The caller checked [`Self::accepts`].
    pub fn push(&mut self, record: &RecordRef<'_>, out: &mut Vec<u8>) {
        debug_assert!(self.accepts(record.at_ms, u32::MAX));
        let delta = record.at_ms - self.prev_ms;
        let dod = delta - self.prev_delta;
        let kind = (record.outcome, record.error_class);
        let same = self.prev_kind == Some(kind) && self.prev_detail == record.detail;
        put_varint(out, (zigzag(dod) << 1) | u64::from(same));
        if !same {
            let mode = if record.detail.is_empty() {
                DETAIL_EMPTY
            } else if self.prev_kind.is_some() && self.prev_detail == record.detail {
                DETAIL_SAME
            } else {
                DETAIL_NEW
            };
            out.push(
                outcome_code(record.outcome) | class_code(record.error_class) << 2 | mode << 6,
            );
        }
        put_varint(out, record.latency_us);
        if !same && !record.detail.is_empty() && self.prev_detail != record.detail {
            put_varint(out, record.detail.len() as u64);
            out.extend_from_slice(record.detail.as_bytes());
        }
        if self.prev_detail != record.detail {
            record.detail.clone_into(&mut self.prev_detail);
        }
        self.prev_ms = record.at_ms;
        self.prev_delta = delta;
        self.prev_kind = Some(kind);
        self.count += 1;
    }
}

/// Reads the records of one block in order, validating as it goes.
#[derive(Debug)]
pub(super) struct BlockDecoder<'a> {
    key: BlockKey,
    bytes: &'a [u8],
    pos: usize,
    index: u32,
    prev_ms: i64,
    prev_delta: i64,
    prev_kind: Option<(Outcome, Option<ErrorClass>)>,
    prev_detail: &'a str,
    failed: bool,
}

impl<'a> BlockDecoder<'a> {
    /// Parses the header of the block stored under `key`.
    pub fn new(key: BlockKey, bytes: &'a [u8]) -> Result<BlockDecoder<'a>, String> {
        let bytes = match bytes.first() {
            None => return Err("empty block".to_owned()),
            Some(&BLOCK_ENCODING_V1) => bytes,
            Some(&BLOCK_ENCODING_V2) => super::checksum::strip_checksum(&key.to_bytes(), bytes)?,
            Some(&other) => return Err(format!("unknown block encoding version {other}")),
        };
        let mut pos = 1;
        let offset = get_varint(bytes, &mut pos).map_err(|e| format!("block header: {e}"))?;
        let offset = i64::try_from(offset)
            .ok()
            .filter(|o| *o <= MAX_BLOCK_SPAN_MS)
            .ok_or_else(|| format!("block base offset {offset} ms exceeds the block span"))?;
        Ok(BlockDecoder {
            key,
            bytes,
            pos,
            index: 0,
            prev_ms: key.start_ms + offset,
            prev_delta: 0,
            prev_kind: None,
            prev_detail: "",
            failed: false,
        })
    }

    fn decode_one(&mut self) -> Result<RecordRef<'a>, String> {
        let head = get_varint(self.bytes, &mut self.pos).map_err(str::to_owned)?;
        let same = head & 1 == 1;
        let dod = unzigzag(head >> 1);
        let delta = self
            .prev_delta
            .checked_add(dod)
            .ok_or("time delta overflows")?;
        if delta < 0 {
            return Err(format!("time goes backwards by {} ms", -delta));
        }
        let at_ms = self.prev_ms.checked_add(delta).ok_or("time overflows")?;
        if at_ms - self.key.start_ms > MAX_BLOCK_SPAN_MS {
            return Err(format!(
                "time is {} ms past the block start, beyond the block span",
                at_ms - self.key.start_ms
            ));
        }
        if timestamp_from_ms(at_ms).is_none() {
            return Err(format!("time {at_ms} ms is out of range"));
        }
        let (kind, mode) = if same {
            let kind = self
                .prev_kind
                .ok_or("first record repeats a previous one")?;
            (kind, None)
        } else {
            let Some(&tag) = self.bytes.get(self.pos) else {
                return Err("truncated record tag".to_owned());
            };
            self.pos += 1;
            let class = class_from_code((tag >> 2) & 0x0f)
                .map_err(|code| format!("unknown error class code {code}"))?;
            ((outcome_from_code(tag), class), Some(tag >> 6))
        };
        let latency_us = get_varint(self.bytes, &mut self.pos).map_err(str::to_owned)?;
        let detail = match mode {
            None => self.prev_detail,
            Some(DETAIL_EMPTY) => "",
            Some(DETAIL_SAME) => {
                if self.prev_kind.is_none() || self.prev_detail.is_empty() {
                    return Err("repeats a detail that does not exist".to_owned());
                }
                self.prev_detail
            }
            Some(DETAIL_NEW) => {
                let len = get_varint(self.bytes, &mut self.pos).map_err(str::to_owned)?;
                let end = usize::try_from(len)
                    .ok()
                    .and_then(|len| self.pos.checked_add(len))
                    .filter(|end| *end <= self.bytes.len())
                    .ok_or_else(|| format!("detail of {len} bytes runs past the block end"))?;
                let raw = &self.bytes[self.pos..end];
                self.pos = end;
                if raw.is_empty() {
                    return Err("new detail is empty".to_owned());
                }
                std::str::from_utf8(raw).map_err(|_| "detail is not UTF-8".to_owned())?
            }
            Some(other) => return Err(format!("unknown detail mode {other}")),
        };
        self.prev_ms = at_ms;
        self.prev_delta = delta;
        self.prev_kind = Some(kind);
        self.prev_detail = detail;
        Ok(RecordRef {
            at_ms,
            latency_us,
            outcome: kind.0,
            error_class: kind.1,
            detail,
        })
    }
}

impl<'a> Iterator for BlockDecoder<'a> {
    type Item = Result<RecordRef<'a>, String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.bytes.len() {
            return None;
        }
        let start = self.pos;
        let item = self.decode_one().map_err(|reason| {
            self.failed = true;
            format!("record {} at byte {start}: {reason}", self.index)
        });
        self.index += 1;
        Some(item)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(crate) use crate::testing::Rng;

    #[test]
    fn varints_round_trip_at_every_width() {
        let mut rng = Rng::new(1);
        let mut values = vec![0, 1, 127, 128, 16_383, 16_384, u64::MAX, u64::MAX - 1];
        values.extend((0..64).map(|bit| 1u64 << bit));
        values.extend((0..64).map(|bit| (1u64 << bit) - 1));
        values.extend((0..5_000).map(|_| rng.next() >> rng.below(64)));
        for value in values {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert!(out.len() <= 10);
            let mut pos = 0;
            assert_eq!(get_varint(&out, &mut pos), Ok(value));
            assert_eq!(pos, out.len());
            // Every strict prefix is truncated, never a panic or a wrong value.
            for cut in 0..out.len() {
                let mut pos = 0;
                assert!(get_varint(&out[..cut], &mut pos).is_err());
            }
        }
    }

    #[test]
    fn over_long_varints_are_rejected() {
        let mut pos = 0;
        assert!(get_varint(&[0xff; 11], &mut pos).is_err());
        let mut pos = 0;
        let mut too_big = vec![0xff; 9];
        too_big.push(0x02);
        assert!(get_varint(&too_big, &mut pos).is_err());
    }

    #[test]
    fn zigzag_round_trips_and_keeps_small_values_small() {
        let mut rng = Rng::new(2);
        for value in [0, 1, -1, 63, -64, i64::MAX, i64::MIN]
            .into_iter()
            .chain((0..5_000).map(|_| (rng.next() as i64) >> rng.below(64)))
        {
            assert_eq!(unzigzag(zigzag(value)), value);
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
        assert!(zigzag(-64) < 128 && zigzag(63) < 128);
    }

    #[test]
    fn ordered_ms_sorts_like_numbers() {
        let mut rng = Rng::new(3);
        let mut values: Vec<i64> = (0..2_000).map(|_| (rng.next() as i64) >> 10).collect();
        values.extend([i64::MIN, -1, 0, 1, i64::MAX]);
        let mut by_bytes = values.clone();
        by_bytes.sort_by_key(|v| ordered_ms(*v));
        values.sort_unstable();
        assert_eq!(by_bytes, values);
        for v in values {
            assert_eq!(ms_from_ordered(ordered_ms(v)), v);
        }
    }

    #[test]
    fn block_keys_round_trip() {
        let key = BlockKey {
            probe_id: 7,
            start_ms: -5,
        };
        assert_eq!(BlockKey::parse(&key.to_bytes()), Some(key));
        assert_eq!(BlockKey::parse(&[0; 11]), None);
        assert_eq!(BlockKey::parse(&[0; 13]), None);
    }

    #[test]
    fn millisecond_rounding() {
        let at = Timestamp::new(5, 1_500_000).unwrap();
        assert_eq!(ms_floor(at), 5_001);
        assert_eq!(ms_ceil(at), 5_002);
        let before = Timestamp::new(-5, -1_500_000).unwrap();
        assert_eq!(ms_floor(before), -5_002);
        assert_eq!(ms_ceil(before), -5_001);
        let exact = Timestamp::from_millisecond(42).unwrap();
        assert_eq!((ms_floor(exact), ms_ceil(exact)), (42, 42));
    }

    const OUTCOMES: [Outcome; 4] = [
        Outcome::Up,
        Outcome::Degraded,
        Outcome::Down,
        Outcome::Unknown,
    ];
    const CLASSES: [Option<ErrorClass>; 9] = [
        None,
        Some(ErrorClass::Dns),
        Some(ErrorClass::Connect),
        Some(ErrorClass::Tls),
        Some(ErrorClass::Timeout),
        Some(ErrorClass::HttpStatus),
        Some(ErrorClass::Assertion),
        Some(ErrorClass::Protocol),
        Some(ErrorClass::Io),
    ];
    const DETAILS: [&str; 5] = ["", "connection refused", "HTTP 503", "délai dépassé", "x"];

    /// One generated record: time, latency, and indexes into the tables above.
    type Sample = (i64, u64, usize, usize, usize);

    /// Random records in time order that all fit one block starting at `start`.
    fn random_block(rng: &mut Rng, start: i64, n: usize) -> Vec<Sample> {
        let mut at = start + rng.below(1000) as i64;
        let mut out = Vec::new();
        for _ in 0..n {
            let step = match rng.below(4) {
                0 => 0,
                1 => rng.below(100),
                2 => 10_000 + rng.below(50),
                _ => rng.below(3_000_000),
            } as i64;
            if at + step - start > MAX_BLOCK_SPAN_MS {
                break;
            }
            at += step;
            let latency = match rng.below(3) {
                0 => rng.below(200),
                1 => rng.below(50_000),
                _ => rng.next() >> rng.below(64),
            };
            out.push((
                at,
                latency,
                rng.below(4) as usize,
                rng.below(9) as usize,
                if rng.below(3) == 0 {
                    rng.below(5) as usize
                } else {
                    0
                },
            ));
        }
        out
    }

    #[test]
    fn blocks_round_trip_random_records() {
        let mut rng = Rng::new(4);
        for round in 0..300 {
            let start = (rng.next() as i64 >> 24) - (1 << 38);
            let key = BlockKey {
                probe_id: round,
                start_ms: start,
            };
            let n = 1 + rng.below(300) as usize;
            let records = random_block(&mut rng, start, n);
            let mut bytes = Vec::new();
            let base = records[0].0;
            let mut encoder = BlockEncoder::start(key, base, &mut bytes);
            // Encode in several appends, as group commits add them.
            for &(at_ms, latency_us, o, c, d) in &records {
                assert!(encoder.accepts(at_ms, u32::MAX));
                encoder.push(
                    &RecordRef {
                        at_ms,
                        latency_us,
                        outcome: OUTCOMES[o],
                        error_class: CLASSES[c],
                        detail: DETAILS[d],
                    },
                    &mut bytes,
                );
            }
            assert_eq!(encoder.count() as usize, records.len());
            let decoded: Vec<_> = BlockDecoder::new(key, &bytes)
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(decoded.len(), records.len());
            for (got, &(at_ms, latency_us, o, c, d)) in decoded.iter().zip(&records) {
                assert_eq!(
                    *got,
                    RecordRef {
                        at_ms,
                        latency_us,
                        outcome: OUTCOMES[o],
                        error_class: CLASSES[c],
                        detail: DETAILS[d],
                    }
                );
            }
        }
    }

    #[test]
    fn a_steady_probe_costs_few_bytes_per_record() {
        let key = BlockKey {
            probe_id: 1,
            start_ms: 1_000_000,
        };
        let mut bytes = Vec::new();
        let mut encoder = BlockEncoder::start(key, key.start_ms, &mut bytes);
        for i in 0..200 {
            let record = RecordRef {
                at_ms: key.start_ms + i * 10_000 + (i * 7) % 13,
                latency_us: 3_000 + (i as u64 * 37) % 500,
                outcome: Outcome::Up,
                error_class: None,
                detail: "",
            };
            encoder.push(&record, &mut bytes);
        }
        // head (1 byte) + latency (2 bytes), plus the header and the first tag.
        assert!(bytes.len() <= 200 * 3 + 8, "{} bytes", bytes.len());
    }

    #[test]
    fn damaged_blocks_are_errors_not_panics() {
        let mut rng = Rng::new(5);
        let key = BlockKey {
            probe_id: 1,
            start_ms: 0,
        };
        let records = random_block(&mut rng, 0, 200);
        let mut bytes = Vec::new();
        let mut encoder = BlockEncoder::start(key, records[0].0, &mut bytes);
        for &(at_ms, latency_us, o, c, d) in &records {
            encoder.push(
                &RecordRef {
                    at_ms,
                    latency_us,
                    outcome: OUTCOMES[o],
                    error_class: CLASSES[c],
                    detail: DETAILS[d],
                },
                &mut bytes,
            );
        }
        // Truncations, flipped bytes and garbage: decoding may yield fewer or other records
        // but must end, and never panic.
        for cut in 0..bytes.len() {
            if let Ok(decoder) = BlockDecoder::new(key, &bytes[..cut]) {
                let _ = decoder.count();
            }
        }
        for _ in 0..2_000 {
            let mut damaged = bytes.clone();
            let at = rng.below(damaged.len() as u64) as usize;
            damaged[at] = rng.next() as u8;
            if let Ok(decoder) = BlockDecoder::new(key, &damaged) {
                let _ = decoder.count();
            }
        }
        for _ in 0..2_000 {
            let garbage: Vec<u8> = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
            if let Ok(decoder) = BlockDecoder::new(key, &garbage) {
                let _ = decoder.count();
            }
        }
        assert!(BlockDecoder::new(key, &[]).is_err());
        assert!(BlockDecoder::new(key, &[9, 0]).is_err());
        // A truncated record is reported, with its position.
        let err = BlockDecoder::new(key, &bytes[..bytes.len() - 1])
            .unwrap()
            .find_map(Result::err);
        assert!(err.is_some_and(|e| e.contains("at byte")));
    }
}
