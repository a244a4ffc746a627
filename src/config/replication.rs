//! `[replication]`, `[daemon].location` and the `locations`/`quorum` keys of probes and SLAs
//! (SPEC §9): what makes a daemon one vantage point of a fleet.

use std::path::PathBuf;

use super::{
    reader::{Ctx, Item, Section},
    spec::{ReplicationRole, ReplicationSpec, relative_to},
};
use crate::model::LocationName;

const REPLICATION_KEYS: &[&str] = &["nats", "stream", "role", "creds", "tls_ca", "consumer"];

/// The stream name unless `stream` says otherwise (SPEC §9).
pub(crate) const DEFAULT_STREAM: &str = "UPLEDGER";

/// The durable consumer's name unless `consumer` says otherwise.
pub(crate) const DEFAULT_CONSUMER: &str = "upledger-coordinator";

/// Reads `[replication]` (absent: this daemon stands alone).
pub(crate) fn read_replication(
    ctx: &mut Ctx<'_>,
    section: Option<Section<'_>>,
    main: &std::path::Path,
) -> Option<ReplicationSpec> {
    let section = section?;
    ctx.in_context_none(|ctx| section.reject_unknown_keys(ctx, REPLICATION_KEYS, "[replication]"));
    let nats = match section.get("nats") {
        Some(item) => ctx.parsed(item, check_nats_url),
        None => {
            ctx.error_at(
                section.file,
                &section.span,
                "[replication]: missing key \"nats\" (the NATS server, like \"nats://127.0.0.1:4222\")"
                    .into(),
            );
            None
        }
    };
    let stream = section
        .get("stream")
        .and_then(|item| ctx.parsed(item, check_nats_name))
        .unwrap_or_else(|| DEFAULT_STREAM.to_owned());
    let consumer = section
        .get("consumer")
        .and_then(|item| ctx.parsed(item, check_nats_name))
        .unwrap_or_else(|| DEFAULT_CONSUMER.to_owned());
    let role = section
        .get("role")
        .and_then(|item| {
            ctx.parsed(item, |s| match s {
                "agent" => Ok(ReplicationRole::Agent),
                "coordinator" => Ok(ReplicationRole::Coordinator),
                other => Err(format!(
                    "unknown role \"{other}\"; expected \"agent\" or \"coordinator\""
                )),
            })
        })
        .unwrap_or(ReplicationRole::Agent);
    let path = |ctx: &mut Ctx<'_>, key: &str| {
        section
            .get(key)
            .and_then(|item| ctx.string(item))
            .map(|p| relative_to(main, &PathBuf::from(p)))
    };
    let creds = path(ctx, "creds");
    let tls_ca = path(ctx, "tls_ca");
    Some(ReplicationSpec {
        nats: nats?,
        stream,
        role,
        creds,
        tls_ca,
        consumer,
    })
}

/// `nats://`, `tls://` (or `ws://`-less) server addresses, comma-separated.
fn check_nats_url(text: &str) -> Result<String, String> {
    let mut any = false;
    for part in text.split(',').map(str::trim) {
        any = true;
        let url =
            url::Url::parse(part).map_err(|e| format!("invalid NATS address \"{part}\": {e}"))?;
        if !matches!(url.scheme(), "nats" | "tls") || url.host_str().is_none() {
            return Err(format!(
                "invalid NATS address \"{part}\"; expected nats://host:port or tls://host:port"
            ));
        }
    }
    if !any {
        return Err("expected a NATS address like \"nats://127.0.0.1:4222\"".to_owned());
    }
    Ok(text.to_owned())
}

/// Stream and consumer names: NATS forbids spaces, `.`, `*`, `>`, path separators.
fn check_nats_name(text: &str) -> Result<String, String> {
    let bad = |c: char| c.is_whitespace() || matches!(c, '.' | '*' | '>' | '/' | '\\');
    if text.is_empty() || text.len() > 64 || text.chars().any(bad) {
        Err(format!(
            "invalid NATS name \"{text}\": 1-64 characters without spaces, '.', '*', '>' or slashes"
        ))
    } else {
        Ok(text.to_owned())
    }
}

/// `[daemon].location`, or the host name made into a location name.
pub(crate) fn read_location(ctx: &mut Ctx<'_>, item: Option<Item<'_>>) -> LocationName {
    item.and_then(|item| ctx.parsed(item, |s| LocationName::new(s).map_err(|e| e.to_string())))
        .unwrap_or_else(host_location)
}

/// This host's name as a location: what a daemon without `location` records.
fn host_location() -> LocationName {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    LocationName::sanitized(host.trim())
}

/// A `locations = [...]` list: valid names, each once, at least one.
pub(crate) fn read_locations(ctx: &mut Ctx<'_>, item: Item<'_>) -> Option<Vec<LocationName>> {
    let names = ctx.string_list(item)?;
    let mut locations: Vec<LocationName> = Vec::with_capacity(names.len());
    for name in &names {
        match LocationName::new(name) {
            Ok(location) if locations.contains(&location) => {
                ctx.error(item, format!("location \"{name}\" is listed twice"));
                return None;
            }
            Ok(location) => locations.push(location),
            Err(e) => {
                ctx.error(item, e.to_string());
                return None;
            }
        }
    }
    if locations.is_empty() {
        ctx.error(
            item,
            "lists no location; leave `locations` out to check from here alone",
        );
        return None;
    }
    Some(locations)
}

/// The quorum of `locations`: as configured (1 ..= n), or a majority.
pub(crate) fn read_quorum(
    ctx: &mut Ctx<'_>,
    item: Option<Item<'_>>,
    locations: usize,
) -> Option<usize> {
    match item {
        None => Some(majority(locations)),
        Some(item) => {
            let quorum: usize = ctx.integer(item, 1, 1_000)?;
            if quorum > locations.max(1) {
                ctx.error(
                    item,
                    format!("quorum {quorum} is more than the {locations} location(s) listed"),
                );
                return None;
            }
            Some(quorum)
        }
    }
}

/// More than half of `n` (1 for one or none): a split in two never decides alone.
pub fn majority(n: usize) -> usize {
    n / 2 + 1
}
