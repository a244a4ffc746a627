//! Digests: each probe's results per UTC hour, kept as [`Run`]s and a latency histogram —
//! the rollup month reports read instead of raw results.
//!
//! # Layout
//!
//! Tree `digests`. Per probe and UTC day, `d ++ probe_id (u32 BE) ++ day start (ordered ms)`
//! holds the day's *hour chunks* in hour order, each
//! `varint length ++ hour of day (u8) ++ runs ++ latency buckets`; writing an hour rewrites its
//! day. Per probe, `c ++ probe_id` holds the *coverage*: every hour before it is digested.
//! Days and coverage are written in one atomic batch. A day value written since checksums
//! came starts `0x00 ++ 0x01` and ends with a CRC-32 of `key ++ everything before it` (see
//! `checksum.rs`); older values (whose first byte, a varint of a length ≥ 1, is never 0) are
//! read unchecked.
//!
//! - runs: `varint n`, then per run `varint first (ms after the hour)`, `varint last − first`,
//!   `outcome (u8)`, `varint count`, `varint max gap (ms)`, and for `down` runs
//!   `error class (u8)`, `varint length ++ detail`.
//! - buckets: `varint n`, then per bucket `varint index delta`, `varint count`,
//!   `varint min µs`, `varint max − min`.
//!
//! # Invariant
//!
//! Below its coverage, a probe's digests equal what its raw results say: the digest pass
//! ([`Ledger::digest_until`]) only moves coverage over hours it read, and a result written
//! below the coverage later (a late append, an import) re-digests its hour in the same
//! writer section. Digests are kept when raw results are pruned: that is what keeps old months
//! reportable.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::Timestamp;

use super::encoding::{
    class_code, class_from_code, get_varint, ms_from_ordered, ordered_ms, outcome_code,
    outcome_from_code, put_varint, timestamp_from_ms,
};
use super::{Ledger, LedgerError, ResultRecord, Writer};
use crate::model::{LatencyBucket, LatencyHistogram, Outcome, ProbeName, Run, push_run};

pub(super) const HOUR_MS: i64 = 3_600_000;

/// How long after an hour ends it is digested, so that checks started in it have been
/// written (one written later re-digests its hour anyway).
pub const DIGEST_SETTLE: jiff::SignedDuration = jiff::SignedDuration::from_mins(2);
const DAY_MS: i64 = 24 * HOUR_MS;
const DAY_PREFIX: u8 = b'd';
const COVERAGE_PREFIX: u8 = b'c';
/// Hours the digest pass reads under the writer lock at a time, so live appends wait little.
const HOURS_PER_STEP: i64 = 24;

/// One probe's results of one UTC hour, digested.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HourDigest {
    /// The first instant of the hour.
    pub hour: Timestamp,
    /// The hour's results as runs, in time order.
    pub runs: Vec<Run>,
    /// The hour's check latencies.
    pub latency: LatencyHistogram,
}

impl HourDigest {
    /// Checks in the hour.
    pub fn checks(&self) -> u64 {
        self.runs.iter().map(|r| u64::from(r.count)).sum()
    }

    /// Checks in the hour that found the target down.
    pub fn failed_checks(&self) -> u64 {
        self.runs
            .iter()
            .filter(|r| r.outcome == Outcome::Down)
            .map(|r| u64::from(r.count))
            .sum()
    }

    /// Digests `records` (all of one hour, in time order).
    fn of(hour: Timestamp, records: &[ResultRecord]) -> HourDigest {
        let mut digest = HourDigest {
            hour,
            ..HourDigest::default()
        };
        for record in records {
            push_run(
                &mut digest.runs,
                Duration::MAX,
                record.at,
                record.outcome,
                record.error_class,
                &record.detail,
            );
            digest.latency.add(record.latency);
        }
        digest
    }
}

/// One probe's digested hours of one UTC day, as a month report reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayDigest {
    /// The day's hours asked for, in time order. Their histograms are empty when the whole
    /// day was asked for: then [`DayDigest::latency`] holds the day's.
    pub hours: Vec<HourDigest>,
    /// The whole day's latencies, or empty when only part of the day was asked for.
    pub latency: LatencyHistogram,
}

/// The floor of `ms` to a multiple of `unit`.
pub(super) fn floor_to(ms: i64, unit: i64) -> i64 {
    ms.div_euclid(unit) * unit
}

fn day_key(id: u32, day_ms: i64) -> [u8; 13] {
    let mut key = [DAY_PREFIX; 13];
    key[1..5].copy_from_slice(&id.to_be_bytes());
    key[5..].copy_from_slice(&ordered_ms(day_ms));
    key
}

fn coverage_key(id: u32) -> [u8; 5] {
    let mut key = [COVERAGE_PREFIX; 5];
    key[1..].copy_from_slice(&id.to_be_bytes());
    key
}

fn encode_buckets(latency: &LatencyHistogram, out: &mut Vec<u8>) {
    let buckets: Vec<(u16, LatencyBucket)> = latency.buckets().collect();
    put_varint(out, buckets.len() as u64);
    let mut previous = 0u16;
    for (index, bucket) in buckets {
        put_varint(out, u64::from(index - previous));
        previous = index;
        put_varint(out, bucket.count);
        put_varint(out, bucket.min_us);
        put_varint(out, bucket.max_us - bucket.min_us);
    }
}

fn decode_buckets(bytes: &[u8], pos: &mut usize) -> Result<LatencyHistogram, String> {
    let mut varint = || get_varint(bytes, pos).map_err(str::to_owned);
    let mut latency = LatencyHistogram::default();
    let buckets_n = varint()?;
    let mut index = 0u64;
    for _ in 0..buckets_n {
        index += varint()?;
        let count = varint()?;
        let min_us = varint()?;
        let max_us = min_us.saturating_add(varint()?);
        let index = u16::try_from(index).map_err(|_| "latency bucket out of range")?;
        latency.add_bucket(
            index,
            LatencyBucket {
                count,
                min_us,
                max_us,
            },
        );
    }
    Ok(latency)
}

/// First bytes of a checksummed day value: a zero no unchecked value starts with, then the
/// checked layout's version.
const CHECKED_DAY: [u8; 2] = [0x00, 0x01];

/// The stored form of a day under `key`: marked and checksummed.
fn checked_day(key: &[u8], body: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(body.len() + 2 + super::checksum::CHECKSUM_BYTES);
    value.extend_from_slice(&CHECKED_DAY);
    value.extend_from_slice(body);
    super::checksum::append_checksum(key, &mut value);
    value
}

/// The day encoding inside a stored value: checked when it carries a checksum.
fn day_body<'a>(key: &[u8], value: &'a [u8]) -> Result<&'a [u8], String> {
    match value.first() {
        Some(0x00) => {
            let body = super::checksum::strip_checksum(key, value)?;
            body.strip_prefix(&CHECKED_DAY[..])
                .ok_or_else(|| "unknown day encoding".to_owned())
        }
        _ => Ok(value),
    }
}

/// A day's value: the day's latency histogram (the sum of its hours', so a report of whole
/// days need not decode 24 of them), then the hour chunks in hour order.
fn encode_day(hours: &BTreeMap<i64, HourDigest>) -> Vec<u8> {
    let mut total = LatencyHistogram::default();
    for digest in hours.values() {
        total.merge(&digest.latency);
    }
    let mut head = Vec::new();
    encode_buckets(&total, &mut head);
    let mut out = Vec::with_capacity(head.len() + hours.len() * 64);
    put_varint(&mut out, head.len() as u64);
    out.extend_from_slice(&head);
    for (hour_ms, digest) in hours {
        encode_chunk(*hour_ms, digest, &mut out);
    }
    out
}

fn encode_chunk(hour_ms: i64, digest: &HourDigest, out: &mut Vec<u8>) {
    let mut body = Vec::with_capacity(32);
    body.push(((hour_ms - floor_to(hour_ms, DAY_MS)) / HOUR_MS) as u8);
    put_varint(&mut body, digest.runs.len() as u64);
    let ms = |at: Timestamp| at.as_millisecond();
    for run in &digest.runs {
        put_varint(&mut body, (ms(run.first) - hour_ms).max(0) as u64);
        put_varint(&mut body, (ms(run.last) - ms(run.first)).max(0) as u64);
        body.push(outcome_code(run.outcome));
        put_varint(&mut body, u64::from(run.count));
        put_varint(
            &mut body,
            u64::try_from(run.max_gap.as_millis()).unwrap_or(u64::MAX),
        );
        if run.outcome == Outcome::Down {
            body.push(class_code(run.error_class));
            put_varint(&mut body, run.detail.len() as u64);
            body.extend_from_slice(run.detail.as_bytes());
        }
    }
    encode_buckets(&digest.latency, &mut body);
    put_varint(out, body.len() as u64);
    out.extend_from_slice(&body);
}

/// A decoded day: its latency histogram and its hours (a later chunk for an hour would
/// replace an earlier one). Without `hourly_latency` the hours' histograms are skipped.
fn decode_day(
    day_ms: i64,
    bytes: &[u8],
    hourly_latency: bool,
) -> Result<(LatencyHistogram, BTreeMap<i64, HourDigest>), String> {
    let mut pos = 0;
    let head_len = usize::try_from(get_varint(bytes, &mut pos)?).map_err(|e| e.to_string())?;
    let head = bytes
        .get(pos..pos.saturating_add(head_len))
        .ok_or("truncated day histogram")?;
    pos += head_len;
    let mut head_pos = 0;
    let total = decode_buckets(head, &mut head_pos)?;
    if head_pos != head.len() {
        return Err("trailing bytes in the day histogram".to_owned());
    }
    let mut hours = BTreeMap::new();
    while pos < bytes.len() {
        let len = usize::try_from(get_varint(bytes, &mut pos)?).map_err(|e| e.to_string())?;
        let body = bytes
            .get(pos..pos.saturating_add(len))
            .ok_or("truncated hour chunk")?;
        pos += len;
        let (hour_ms, digest) = decode_chunk(day_ms, body, hourly_latency)?;
        hours.insert(hour_ms, digest);
    }
    Ok((total, hours))
}

fn decode_chunk(day_ms: i64, body: &[u8], with_latency: bool) -> Result<(i64, HourDigest), String> {
    let mut pos = 0;
    let varint = |pos: &mut usize| get_varint(body, pos).map_err(str::to_owned);
    let byte = |pos: &mut usize| -> Result<u8, String> {
        let b = *body.get(*pos).ok_or("truncated hour chunk")?;
        *pos += 1;
        Ok(b)
    };
    let hour_of_day = byte(&mut pos)?;
    if hour_of_day >= 24 {
        return Err(format!("hour {hour_of_day} of a day"));
    }
    let hour_ms = day_ms + i64::from(hour_of_day) * HOUR_MS;
    let at = |offset: u64| -> Result<Timestamp, String> {
        i64::try_from(offset)
            .ok()
            .and_then(|o| hour_ms.checked_add(o))
            .and_then(timestamp_from_ms)
            .ok_or_else(|| format!("run time {offset} ms out of range"))
    };
    let runs_n = varint(&mut pos)?;
    let mut runs = Vec::with_capacity(usize::try_from(runs_n.min(4096)).unwrap_or(0));
    for _ in 0..runs_n {
        let first_offset = varint(&mut pos)?;
        let span = varint(&mut pos)?;
        let outcome = outcome_from_code(byte(&mut pos)?);
        let count = u32::try_from(varint(&mut pos)?).map_err(|e| e.to_string())?;
        let max_gap = Duration::from_millis(varint(&mut pos)?);
        let (error_class, detail) = if outcome == Outcome::Down {
            let class = class_from_code(byte(&mut pos)?)
                .map_err(|code| format!("unknown error class {code}"))?;
            let len = usize::try_from(varint(&mut pos)?).map_err(|e| e.to_string())?;
            let text = body
                .get(pos..pos.saturating_add(len))
                .ok_or("truncated detail")?;
            pos += len;
            let text = std::str::from_utf8(text).map_err(|e| e.to_string())?;
            (class, text.to_owned())
        } else {
            (None, String::new())
        };
        runs.push(Run {
            first: at(first_offset)?,
            last: at(first_offset.saturating_add(span))?,
            outcome,
            count,
            max_gap,
            error_class,
            detail,
        });
    }
    // The histogram is the chunk's tail: skipped when the day's total serves.
    let latency = if with_latency {
        let latency = decode_buckets(body, &mut pos)?;
        if pos != body.len() {
            return Err("trailing bytes in hour chunk".to_owned());
        }
        latency
    } else {
        LatencyHistogram::default()
    };
    let hour = timestamp_from_ms(hour_ms).ok_or("hour out of range")?;
    Ok((
        hour_ms,
        HourDigest {
            hour,
            runs,
            latency,
        },
    ))
}

/// The stored bytes of an hour digested from `records` (all of the hour, in time order): what
/// `fsck` compares a stored hour with.
pub(super) fn chunk_of(hour_ms: i64, records: &[ResultRecord]) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(hour) = timestamp_from_ms(hour_ms) {
        encode_chunk(hour_ms, &HourDigest::of(hour, records), &mut out);
    }
    out
}

impl Ledger {
    /// The stored digests of `probe`'s hours in `[from, to)`, each encoded again by hour
    /// start (ms): what `fsck` compares with digests made from the results.
    pub(super) fn checked_digests(
        &self,
        probe: &ProbeName,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<BTreeMap<i64, Vec<u8>>, LedgerError> {
        let mut found = BTreeMap::new();
        for digest in self.digests(probe, from, to)? {
            let hour_ms = digest.hour.as_millisecond();
            let mut out = Vec::new();
            encode_chunk(hour_ms, &digest, &mut out);
            found.insert(hour_ms, out);
        }
        Ok(found)
    }

    /// The instant before which `probe`'s hours are digested, if any are.
    pub fn digest_coverage(&self, probe: &ProbeName) -> Result<Option<Timestamp>, LedgerError> {
        let Some(id) = self.probe_id(probe)? else {
            return Ok(None);
        };
        Ok(self.coverage_ms(id)?.and_then(timestamp_from_ms))
    }

    /// The digests of `probe`'s hours starting in `[from, to)` that are covered (see
    /// [`Ledger::digest_coverage`]); hours without results have none. In time order.
    pub fn digests(
        &self,
        probe: &ProbeName,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<HourDigest>, LedgerError> {
        let mut found = Vec::new();
        self.visit_digest_days(probe, from, to, true, &mut |_, hours| found.extend(hours))?;
        Ok(found)
    }

    /// [`Ledger::digests`] by UTC day: a day wholly inside `[from, to)` and the coverage comes
    /// with one latency histogram instead of 24, which is what makes a month report cheap.
    pub fn digest_days(
        &self,
        probe: &ProbeName,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<DayDigest>, LedgerError> {
        let mut found = Vec::new();
        self.visit_digest_days(probe, from, to, false, &mut |whole_day, hours| {
            found.push(DayDigest {
                hours,
                latency: whole_day.unwrap_or_default(),
            });
        })?;
        Ok(found)
    }

    /// Decodes `probe`'s digested days that overlap `[from, to)` (cut at the coverage), in
    /// time order, and hands each to `each(whole_day, hours)`: the day's total latency
    /// histogram when the day lies wholly inside, and its hours inside the range. Hours carry
    /// their own histograms for partial days, and for whole days too with `hour_latencies`.
    fn visit_digest_days(
        &self,
        probe: &ProbeName,
        from: Timestamp,
        to: Timestamp,
        hour_latencies: bool,
        each: &mut dyn FnMut(Option<LatencyHistogram>, Vec<HourDigest>),
    ) -> Result<(), LedgerError> {
        let Some(id) = self.probe_id(probe)? else {
            return Ok(());
        };
        let Some(coverage) = self.coverage_ms(id)? else {
            return Ok(());
        };
        let from_ms = from.as_millisecond();
        let to_ms = to.as_millisecond().min(coverage);
        if from_ms >= to_ms {
            return Ok(());
        }
        let lo = day_key(id, floor_to(from_ms, DAY_MS));
        let hi = day_key(id, floor_to(to_ms - 1, DAY_MS) + DAY_MS);
        for item in self.store()?.digests.range(lo..hi) {
            let (key, value) = item.map_err(|e| self.sled_error(e))?;
            let day_ms = key
                .get(5..13)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(ms_from_ordered)
                .ok_or_else(|| self.corrupt("digests", "bad day key"))?;
            let whole = from_ms <= day_ms && day_ms + DAY_MS <= to_ms;
            let (total, hours) = day_body(&key, &value)
                .and_then(|body| decode_day(day_ms, body, hour_latencies || !whole))
                .map_err(|reason| {
                    self.corrupt(format!("digests of {probe} for day {day_ms} ms"), reason)
                })?;
            let hours = hours
                .into_iter()
                .filter(|(hour_ms, _)| (from_ms..to_ms).contains(hour_ms))
                .map(|(_, digest)| digest)
                .collect();
            each(whole.then_some(total), hours);
        }
        Ok(())
    }

    /// Digests every probe's whole hours that end at or before `until`, from its coverage
    /// on (from its first result the first time). Takes the writer lock one probe-day at a
    /// time, so the daemon's appends go on meanwhile, and stops early (consistent, to go on
    /// next time) once `keep_going` says no. Returns how many hours were read.
    pub fn digest_until(
        &self,
        until: Timestamp,
        keep_going: &dyn Fn() -> bool,
    ) -> Result<u64, LedgerError> {
        let until_ms = floor_to(until.as_millisecond(), HOUR_MS);
        let mut hours = 0;
        for (probe, id) in self.all_probes()? {
            loop {
                if !keep_going() {
                    return Ok(hours);
                }
                let mut writer = self.lock_writer();
                let start = match self.coverage_ms(id)? {
                    Some(ms) => ms,
                    None => match self.first_result_ms(id)? {
                        Some(ms) => floor_to(ms, HOUR_MS),
                        None => break,
                    },
                };
                if start >= until_ms {
                    break;
                }
                // Skip hours without results at once (a probe removed long ago, a gap).
                let start = match self.next_block_start(id, start)? {
                    Some(next) if next > start => floor_to(next, HOUR_MS).min(until_ms),
                    Some(_) => start,
                    None => until_ms,
                };
                let end = until_ms.min(start + HOURS_PER_STEP * HOUR_MS).max(start);
                let hour_set: BTreeSet<i64> = (start..end).step_by(HOUR_MS as usize).collect();
                hours += hour_set.len() as u64;
                self.write_digests(&mut writer, id, &probe, &hour_set, Some(end))?;
            }
        }
        Ok(hours)
    }

    /// Re-digests the hours of `records` that lie below their probe's coverage: results
    /// written late (an import, a check that ended after its hour was digested).
    pub(super) fn redigest_behind(
        &self,
        writer: &mut Writer,
        records: &[ResultRecord],
    ) -> Result<(), LedgerError> {
        let mut behind: BTreeMap<&ProbeName, BTreeSet<i64>> = BTreeMap::new();
        for record in records {
            let Some(id) = writer.ids.get(&record.probe).copied() else {
                continue;
            };
            let coverage = match writer.coverage.get(&id) {
                Some(known) => *known,
                None => {
                    let stored = self.coverage_ms(id)?;
                    writer.coverage.insert(id, stored);
                    stored
                }
            };
            let at_ms = record.at_ms();
            if coverage.is_some_and(|c| at_ms < c) {
                behind
                    .entry(&record.probe)
                    .or_default()
                    .insert(floor_to(at_ms, HOUR_MS));
            }
        }
        for (probe, hours) in behind {
            if let Some(id) = writer.ids.get(probe).copied() {
                self.write_digests(writer, id, probe, &hours, None)?;
            }
        }
        Ok(())
    }

    /// Reads `hours` of probe `id` from the raw results and appends their chunks, moving the
    /// coverage to `coverage` if given, in one batch.
    fn write_digests(
        &self,
        writer: &mut Writer,
        id: u32,
        probe: &ProbeName,
        hours: &BTreeSet<i64>,
        coverage: Option<i64>,
    ) -> Result<(), LedgerError> {
        let (Some(&first), Some(&last)) = (hours.first(), hours.last()) else {
            if let Some(coverage) = coverage {
                self.store()?
                    .digests
                    .insert(coverage_key(id), &ordered_ms(coverage)[..])
                    .map_err(|e| self.sled_error(e))?;
                writer.coverage.insert(id, Some(coverage));
            }
            return Ok(());
        };
        let mut by_hour: BTreeMap<i64, Vec<ResultRecord>> = BTreeMap::new();
        self.scan(id, probe, first, last + HOUR_MS, &mut |at_ms, record| {
            let hour = floor_to(at_ms, HOUR_MS);
            if hours.contains(&hour) {
                by_hour.entry(hour).or_default().push(record);
            }
            Ok(())
        })?;
        // Days are rewritten whole: read, replace the hours, encode again.
        let mut days: BTreeMap<i64, BTreeMap<i64, HourDigest>> = BTreeMap::new();
        for &hour_ms in hours {
            let day_ms = floor_to(hour_ms, DAY_MS);
            let day = match days.entry(day_ms) {
                std::collections::btree_map::Entry::Occupied(day) => day.into_mut(),
                std::collections::btree_map::Entry::Vacant(slot) => {
                    let stored = self
                        .store()?
                        .digests
                        .get(day_key(id, day_ms))
                        .map_err(|e| self.sled_error(e))?;
                    let decoded = match stored {
                        Some(bytes) => day_body(&day_key(id, day_ms), &bytes)
                            .and_then(|body| decode_day(day_ms, body, true))
                            .map(|(_, hours)| hours)
                            .map_err(|reason| {
                                self.corrupt(
                                    format!("digests of {probe} for day {day_ms} ms"),
                                    reason,
                                )
                            })?,
                        None => BTreeMap::new(),
                    };
                    slot.insert(decoded)
                }
            };
            match (by_hour.get(&hour_ms), timestamp_from_ms(hour_ms)) {
                (Some(records), Some(hour)) => {
                    day.insert(hour_ms, HourDigest::of(hour, records));
                }
                _ => {
                    day.remove(&hour_ms);
                }
            }
        }
        let mut batch = sled::Batch::default();
        let mut ops = 0;
        for (day_ms, day) in days {
            if day.is_empty() {
                batch.remove(&day_key(id, day_ms)[..]);
            } else {
                let key = day_key(id, day_ms);
                batch.insert(&key[..], checked_day(&key, &encode_day(&day)));
            }
            ops += 1;
        }
        if let Some(coverage) = coverage {
            batch.insert(&coverage_key(id)[..], &ordered_ms(coverage)[..]);
            writer.coverage.insert(id, Some(coverage));
            ops += 1;
        }
        if ops > 0 {
            self.store()?
                .digests
                .apply_batch(batch)
                .map_err(|e| self.sled_error(e))?;
        }
        Ok(())
    }

    pub(super) fn coverage_ms(&self, id: u32) -> Result<Option<i64>, LedgerError> {
        let Some(value) = self
            .store()?
            .digests
            .get(coverage_key(id))
            .map_err(|e| self.sled_error(e))?
        else {
            return Ok(None);
        };
        <[u8; 8]>::try_from(value.as_ref())
            .map(|b| Some(ms_from_ordered(b)))
            .map_err(|_| self.corrupt(format!("digest coverage of probe id {id}"), "not 8 bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ErrorClass;

    #[test]
    fn days_round_trip_with_their_total_histogram() {
        let day = 1_790_000_000_000 - 1_790_000_000_000 % DAY_MS;
        let hour_ms = day + 5 * HOUR_MS;
        let at = |ms: i64| timestamp_from_ms(hour_ms + ms).unwrap();
        let mut digest = HourDigest {
            hour: at(0),
            ..HourDigest::default()
        };
        let never = Duration::MAX;
        push_run(&mut digest.runs, never, at(10), Outcome::Up, None, "");
        push_run(&mut digest.runs, never, at(30_010), Outcome::Up, None, "");
        push_run(
            &mut digest.runs,
            never,
            at(60_010),
            Outcome::Down,
            Some(ErrorClass::Timeout),
            "no answer in 5s",
        );
        push_run(
            &mut digest.runs,
            never,
            at(90_000),
            Outcome::Unknown,
            None,
            "",
        );
        for us in [12_500u64, 12_500, 5_000_000, 70] {
            digest.latency.add(Duration::from_micros(us));
        }
        let mut other = HourDigest {
            hour: timestamp_from_ms(day + 7 * HOUR_MS).unwrap(),
            ..HourDigest::default()
        };
        push_run(&mut other.runs, never, other.hour, Outcome::Up, None, "");
        other.latency.add(Duration::from_micros(900));
        let hours = BTreeMap::from([
            (hour_ms, digest.clone()),
            (day + 7 * HOUR_MS, other.clone()),
        ]);
        let bytes = encode_day(&hours);
        let (total, decoded) = decode_day(day, &bytes, true).unwrap();
        assert_eq!(decoded, hours);
        let mut sum = digest.latency.clone();
        sum.merge(&other.latency);
        assert_eq!(total, sum, "the day's histogram is its hours' sum");
        // Without hourly histograms: the same runs, no latencies.
        let (_, lean) = decode_day(day, &bytes, false).unwrap();
        assert_eq!(lean[&hour_ms].runs, digest.runs);
        assert_eq!(lean[&hour_ms].latency, LatencyHistogram::default());
        assert_eq!(digest.checks(), 4);
        assert_eq!(digest.failed_checks(), 1);
    }

    #[test]
    fn damaged_chunks_are_errors() {
        let day = 0;
        let mut bytes: Vec<u8> = Vec::new();
        let digest = HourDigest {
            hour: timestamp_from_ms(0).unwrap(),
            runs: vec![Run::single(
                timestamp_from_ms(5).unwrap(),
                Outcome::Down,
                Some(ErrorClass::Connect),
                "refused",
            )],
            latency: LatencyHistogram::default(),
        };
        encode_chunk(0, &digest, &mut bytes);
        let mut value = vec![1, 0]; // an empty day histogram
        value.extend_from_slice(&bytes);
        assert!(decode_day(day, &value, true).is_ok());
        // Cut anywhere but right after the day histogram (a day without hours): an error.
        for cut in (0..value.len()).filter(|&cut| cut != 2) {
            assert!(decode_day(day, &value[..cut], true).is_err(), "{cut}");
        }
        let mut bad_hour = value.clone();
        bad_hour[3] = 24;
        assert!(decode_day(day, &bad_hour, true).is_err());
        // Stored checksummed: the body comes back; a changed byte or another key does not.
        let key = day_key(7, day);
        let stored = checked_day(&key, &value);
        assert_eq!(day_body(&key, &stored), Ok(&value[..]));
        assert_eq!(
            day_body(&key, &value),
            Ok(&value[..]),
            "unchecked values read as they are"
        );
        assert!(day_body(&day_key(8, day), &stored).is_err());
        for i in 0..stored.len() {
            let mut flipped = stored.clone();
            flipped[i] ^= 0x04;
            let read = day_body(&key, &flipped).and_then(|body| decode_day(day, body, true));
            assert!(read.is_err(), "byte {i}");
        }
    }
}
