//! The main config file's sections: `[daemon]`, `[evidence]`, `[[channel]]`, `[[sla]]`,
//! `[[maintenance]]`.

use std::{path::PathBuf, str::FromStr, time::Duration};

use jiff::{Timestamp, civil::Weekday, tz::TimeZone};
use toml::de::DeValue;

use super::{
    reader::{Ctx, Item, Section},
    spec::{
        BurnRule, ChannelKind, ChannelSpec, CreditTier, DEFAULT_BURN_RULES, DaemonSpec,
        DowntimeUnit, EVENT_NAMES, EvidenceSpec, GroupSpec, LatencyObjective, LatencyRule,
        LowerBound, MaintenanceSpec, MaintenanceWhen, SlaSpec, TimePolicy, WitnessSpec,
        WitnessTarget, WitnessedLogSpec, relative_to,
    },
};
use crate::model::{Percent, ProbeName};

/// Top-level keys of the main file.
pub(crate) const MAIN_KEYS: &[&str] = &[
    "daemon",
    "defaults",
    "evidence",
    "witness",
    "replication",
    "channel",
    "sla",
    "maintenance",
    "page",
];
const EVIDENCE_KEYS: &[&str] = &["signing_key", "origin", "hour", "witnesses"];
const WITNESS_TARGET_KEYS: &[&str] = &["url", "key"];
const WITNESS_KEYS: &[&str] = &["name", "signing_key", "silence", "logs"];
const WITNESSED_LOG_KEYS: &[&str] = &["origin", "key"];
const DAEMON_KEYS: &[&str] = &[
    "ledger",
    "location",
    "probes_dir",
    "listen",
    "socket",
    "timezone",
    "max_concurrency",
    "retention",
    "sentinel",
    "show_details",
    "alert_retry_for",
    "burn_rates",
    "clock_step_threshold",
    "socket_group",
    "admin_group",
];
const CHANNEL_KEYS: &[&str] = &[
    "name",
    "kind",
    "url",
    "secret",
    "secret_file",
    "events",
    "format",
    "timeout",
];
const SLA_KEYS: &[&str] = &[
    "name",
    "locations",
    "quorum",
    "client",
    "probes",
    "mode",
    "target",
    "monthly_fee",
    "currency",
    "credits",
    "maintenance",
    "maintenance_notice",
    "unknown",
    "degraded_weight",
    "downtime_unit",
    "min_downtime_period",
    "latency",
    "latency_credit",
    "report_to",
];
const LATENCY_KEYS: &[&str] = &["percentile", "share", "below"];
const CREDIT_KEYS: &[&str] = &["below", "at_or_below", "above", "at_or_above", "credit"];
const BURN_KEYS: &[&str] = &["long", "short", "factor"];
const MAINTENANCE_KEYS: &[&str] = &["probes", "start", "end", "duration", "weekly", "reason"];

/// Reads `[daemon]`; a missing section means every default.
pub(crate) fn read_daemon(
    ctx: &mut Ctx<'_>,
    section: Option<Section<'_>>,
    main: &std::path::Path,
) -> DaemonSpec {
    let get = |key: &str| section.as_ref().and_then(|s| s.get(key));
    if let Some(section) = &section {
        ctx.in_context_none(|ctx| section.reject_unknown_keys(ctx, DAEMON_KEYS, "[daemon]"));
    }
    let path = |ctx: &mut Ctx<'_>, key: &str, default: &str| -> PathBuf {
        let text = get(key).and_then(|item| ctx.string(item));
        relative_to(main, &PathBuf::from(text.as_deref().unwrap_or(default)))
    };
    let ledger = path(ctx, "ledger", "/var/lib/upledger/ledger");
    let location = super::replication::read_location(ctx, get("location"));
    let probes_dir = path(ctx, "probes_dir", "probes.d");
    let socket = path(ctx, "socket", "/run/upledger/upledger.sock");
    let listen = get("listen")
        .and_then(|item| {
            ctx.parsed(item, |s| {
                s.parse().map_err(|_| {
                    format!(
                        "invalid listen address \"{s}\"; expected ip:port like \"127.0.0.1:9474\""
                    )
                })
            })
        })
        .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 9474)));
    let timezone_name = get("timezone")
        .and_then(|item| ctx.string(item))
        .unwrap_or_else(|| "UTC".to_owned());
    let timezone = match TimeZone::get(&timezone_name) {
        Ok(tz) => tz,
        Err(_) => {
            if let Some(item) = get("timezone") {
                ctx.error(item, format!("unknown time zone \"{timezone_name}\"; expected an IANA name like \"Europe/Berlin\""));
            }
            TimeZone::UTC
        }
    };
    let max_concurrency = get("max_concurrency")
        .and_then(|item| ctx.integer(item, 1, 100_000))
        .unwrap_or(512);
    let retention = get("retention")
        .and_then(|item| ctx.duration(item))
        .unwrap_or(Duration::from_secs(400 * 24 * 3600));
    let sentinel = get("sentinel")
        .and_then(|item| ctx.parsed(item, |s| ProbeName::new(s).map_err(|e| e.to_string())));
    let show_details = get("show_details")
        .and_then(|item| ctx.bool(item))
        .unwrap_or(false);
    let alert_retry_for = get("alert_retry_for")
        .and_then(|item| ctx.duration(item))
        .unwrap_or(Duration::from_secs(24 * 3600));
    let burn_rates = get("burn_rates")
        .and_then(|item| read_burn_rules(ctx, item))
        .unwrap_or_else(|| DEFAULT_BURN_RULES.to_vec());
    let clock_step_threshold = get("clock_step_threshold")
        .and_then(|item| bounded_duration(ctx, item, MIN_CLOCK_STEP, MAX_CLOCK_STEP))
        .unwrap_or(DEFAULT_CLOCK_STEP);
    let mut group = |key: &str| {
        let item = get(key)?;
        let name = ctx.string(item)?;
        match nix::unistd::Group::from_name(&name) {
            Ok(Some(group)) => Some(GroupSpec {
                name,
                gid: group.gid.as_raw(),
            }),
            Ok(None) => {
                ctx.error(item, format!("no group is named \"{name}\" on this host"));
                None
            }
            Err(e) => {
                ctx.error(item, format!("cannot look up group \"{name}\": {e}"));
                None
            }
        }
    };
    let socket_group = group("socket_group");
    let admin_group = group("admin_group");
    DaemonSpec {
        ledger,
        location,
        probes_dir,
        listen,
        socket,
        timezone_name,
        timezone,
        max_concurrency,
        retention,
        sentinel,
        show_details,
        alert_retry_for,
        burn_rates,
        clock_step_threshold,
        socket_group,
        admin_group,
    }
}

/// Reads `[evidence]`; a missing section means every default: no key, the origin
/// `upledger/<hostname>`, hours of an hour.
pub(crate) fn read_evidence(
    ctx: &mut Ctx<'_>,
    section: Option<Section<'_>>,
    main: &std::path::Path,
) -> EvidenceSpec {
    let get = |key: &str| section.as_ref().and_then(|s| s.get(key));
    if let Some(section) = &section {
        ctx.in_context_none(|ctx| section.reject_unknown_keys(ctx, EVIDENCE_KEYS, "[evidence]"));
    }
    let signing_key = get("signing_key")
        .and_then(|item| ctx.string(item))
        .map(|path| relative_to(main, &PathBuf::from(path)));
    let origin = get("origin")
        .and_then(|item| ctx.parsed(item, |s| check_origin(s).map(|()| s.to_owned())))
        .unwrap_or_else(default_origin);
    let hour = get("hour")
        .and_then(|item| {
            let hour = ctx.duration(item)?;
            match check_leaf_hour(hour) {
                Ok(()) => Some(hour),
                Err(message) => {
                    ctx.error(item, message);
                    None
                }
            }
        })
        .unwrap_or(DEFAULT_LEAF_HOUR);
    let mut witnesses: Vec<WitnessTarget> = Vec::new();
    if let Some(item) = get("witnesses") {
        for table in ctx.tables(item).unwrap_or_default() {
            ctx.in_context_none(|ctx| {
                table.reject_unknown_keys(ctx, WITNESS_TARGET_KEYS, "[evidence] witnesses")
            });
            let url = required(ctx, &table, "url", "[evidence] witnesses").and_then(|item| {
                ctx.parsed(item, |s| {
                    let url =
                        url::Url::parse(s).map_err(|e| format!("invalid URL \"{s}\": {e}"))?;
                    match url.scheme() {
                        "http" | "https" => Ok(url),
                        other => Err(format!(
                            "a witness URL is http:// or https://, not {other}://"
                        )),
                    }
                })
            });
            let key = required(ctx, &table, "key", "[evidence] witnesses")
                .and_then(|item| ctx.parsed(item, ed25519_public_key));
            if let (Some(url), Some(key)) = (url, key) {
                if witnesses.iter().any(|w| w.url == url) {
                    ctx.error_at(
                        table.file,
                        &table.span,
                        format!("witness {url} is listed twice"),
                    );
                } else {
                    witnesses.push(WitnessTarget { url, key });
                }
            }
        }
    }
    if !witnesses.is_empty()
        && signing_key.is_none()
        && let Some(item) = get("witnesses")
    {
        ctx.error(
            item,
            "witnesses cosign signed checkpoints: set signing_key (make one with `upledger keygen`)",
        );
    }
    EvidenceSpec {
        signing_key,
        origin,
        hour,
        witnesses,
    }
}

/// An OpenSSH Ed25519 public key line (`ssh-ed25519 AAAA… [comment]`), as written in a
/// `.pub` file; returned as given, trimmed. Checked here so a mistyped key is reported at its
/// line, not when the first checkpoint arrives.
fn ed25519_public_key(text: &str) -> Result<String, String> {
    let text = text.trim();
    match ssh_key::PublicKey::from_openssh(text) {
        Ok(key) if key.algorithm() == ssh_key::Algorithm::Ed25519 => Ok(text.to_owned()),
        Ok(key) => Err(format!(
            "an Ed25519 key is needed (\"ssh-ed25519 AAAA…\"), not {}",
            key.algorithm()
        )),
        Err(e) => Err(format!(
            "not an OpenSSH public key (\"ssh-ed25519 AAAA…\", as in a .pub file): {e}"
        )),
    }
}

/// Reads `[witness]` (absent: this daemon witnesses no log). Its key and name default to
/// `[evidence]`'s: a client running upledger as a witness usually has one key.
pub(crate) fn read_witness(
    ctx: &mut Ctx<'_>,
    section: Option<Section<'_>>,
    main: &std::path::Path,
    evidence: &EvidenceSpec,
) -> Option<WitnessSpec> {
    let section = section?;
    ctx.in_context_none(|ctx| section.reject_unknown_keys(ctx, WITNESS_KEYS, "[witness]"));
    let name = section
        .get("name")
        .and_then(|item| {
            ctx.parsed(item, |s| {
                if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c == '+') {
                    Err("a witness name is non-empty, without spaces or '+'".to_owned())
                } else {
                    Ok(s.to_owned())
                }
            })
        })
        .unwrap_or_else(|| evidence.origin.replace([' ', '+'], "-"));
    let signing_key = match section.get("signing_key") {
        Some(item) => ctx
            .string(item)
            .map(|path| relative_to(main, &PathBuf::from(path))),
        None => {
            let key = evidence.signing_key.clone();
            if key.is_none() {
                ctx.error_at(
                    section.file,
                    &section.span,
                    "[witness]: a witness signs its cosignatures: set signing_key here or in \
                     [evidence] (make one with `upledger keygen`)"
                        .into(),
                );
            }
            key
        }
    };
    let silence = section
        .get("silence")
        .and_then(|item| ctx.duration(item))
        .unwrap_or(DEFAULT_LOG_SILENCE);
    let mut logs: Vec<WitnessedLogSpec> = Vec::new();
    match section.get("logs") {
        Some(item) => {
            for table in ctx.tables(item).unwrap_or_default() {
                ctx.in_context_none(|ctx| {
                    table.reject_unknown_keys(ctx, WITNESSED_LOG_KEYS, "[witness] logs")
                });
                let origin = required(ctx, &table, "origin", "[witness] logs")
                    .and_then(|item| ctx.parsed(item, |s| check_origin(s).map(|()| s.to_owned())));
                let key = required(ctx, &table, "key", "[witness] logs")
                    .and_then(|item| ctx.parsed(item, ed25519_public_key));
                if let (Some(origin), Some(key)) = (origin, key) {
                    if logs.iter().any(|l| l.origin == origin) {
                        ctx.error_at(
                            table.file,
                            &table.span,
                            format!("[witness] logs: origin \"{origin}\" is listed twice"),
                        );
                    } else {
                        logs.push(WitnessedLogSpec { origin, key });
                    }
                }
            }
        }
        None => ctx.error_at(
            section.file,
            &section.span,
            "[witness]: missing key \"logs\" (the logs to witness: [{ origin, key }])".into(),
        ),
    }
    Some(WitnessSpec {
        name,
        signing_key: signing_key?,
        silence,
        logs,
    })
}

/// How long a witnessed log may send nothing before `log_silent` (SPEC §9: 2 h).
pub(crate) const DEFAULT_LOG_SILENCE: Duration = Duration::from_secs(2 * 3600);

/// A leaf "hour" is an hour (SPEC §8); only tests set another length.
pub(crate) const DEFAULT_LEAF_HOUR: Duration = Duration::from_secs(3600);

/// `upledger/<hostname>`: a name that tells this host's log from another's without setup.
fn default_origin() -> String {
    // The kernel's own idea of the name; reading it needs no unsafe call. Off Linux, or with
    // /proc unmounted, the log is simply `upledger/localhost` until `origin` is set.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty() && check_origin(name).is_ok())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("upledger/{host}")
}

/// Whether `origin` can be a checkpoint's first line (C2SP tlog-checkpoint): one line of
/// text, not empty, without space at either end, and not mistakable for a signature line
/// (`— name sig`) of the note it heads.
pub(crate) fn check_origin(origin: &str) -> Result<(), String> {
    if origin.is_empty() {
        Err("must not be empty".into())
    } else if origin.contains('\n') || origin.contains('\r') {
        Err("must be one line (no line break)".into())
    } else if origin.trim() != origin {
        Err("must not start or end with a space".into())
    } else if origin.starts_with("— ") {
        Err("must not start with \"— \" (that begins a signature line)".into())
    } else {
        Ok(())
    }
}

/// Whether `hour` can be a leaf's length: at least a second, and a whole divisor of a day so
/// that leaves start at the same instants every UTC day.
pub(crate) fn check_leaf_hour(hour: Duration) -> Result<(), String> {
    const DAY_NANOS: u128 = 24 * 3600 * 1_000_000_000;
    if hour < Duration::from_secs(1) {
        Err("must be at least 1s".into())
    } else if !DAY_NANOS.is_multiple_of(hour.as_nanos()) {
        Err(format!(
            "must divide 24h evenly ({} does not)",
            humantime::format_duration(hour)
        ))
    } else {
        Ok(())
    }
}

/// A wall-clock jump beyond the monotonic clock larger than this is a step (SPEC-free; see
/// `ledger::ClockStep`). NTP slews by at most 0.5 ms/s, so two seconds is never a slew.
const DEFAULT_CLOCK_STEP: Duration = Duration::from_secs(2);
/// Below this a busy machine's scheduling jitter could pass for a step.
const MIN_CLOCK_STEP: Duration = Duration::from_millis(500);
/// Above this a real step would go unnoticed for good.
const MAX_CLOCK_STEP: Duration = Duration::from_secs(3600);

/// A duration within `[min, max]`, or a located error saying the range.
fn bounded_duration(
    ctx: &mut Ctx<'_>,
    item: Item<'_>,
    min: Duration,
    max: Duration,
) -> Option<Duration> {
    let value = ctx.duration(item)?;
    if value < min || value > max {
        ctx.error(
            item,
            format!(
                "must be between {} and {}",
                humantime::format_duration(min),
                humantime::format_duration(max)
            ),
        );
        return None;
    }
    Some(value)
}

/// Reads `burn_rates = [ { long = "1h", short = "5m", factor = 14.4 }, … ]`.
/// Largest `monthly_fee` taken: bounds what reports print and credits multiply.
const MAX_MONTHLY_FEE: f64 = 1e12;

/// Largest burn-rate `factor` taken: a budget burned a million times too fast is gone in
/// seconds; anything larger is a typo.
const MAX_BURN_FACTOR: f64 = 1e6;

fn read_burn_rules(ctx: &mut Ctx<'_>, item: Item<'_>) -> Option<Vec<BurnRule>> {
    let Some(array) = item.raw().as_array() else {
        ctx.error(
            item,
            "expected a list of { long = \"1h\", short = \"5m\", factor = 14.4 } tables",
        );
        return None;
    };
    let mut rules = Vec::new();
    for value in array.iter() {
        let element = Item { value, ..item };
        let Some(table) = value.get_ref().as_table() else {
            ctx.error(
                element,
                "expected a table like { long = \"1h\", short = \"5m\", factor = 14.4 }",
            );
            continue;
        };
        let rule = Section {
            file: item.file,
            table,
            span: value.span(),
        };
        rule.reject_unknown_keys(ctx, BURN_KEYS, "a burn-rate rule");
        let mut need = |key: &str| {
            let found = rule.get(key);
            if found.is_none() {
                ctx.error(element, format!("a burn-rate rule needs {key}"));
            }
            found
        };
        let (long, short, factor) = (need("long"), need("short"), need("factor"));
        let long = long.and_then(|i| ctx.duration(i));
        let short = short.and_then(|i| ctx.duration(i));
        let factor = factor.and_then(|i| {
            let factor = ctx.number(i)?;
            if factor <= 0.0 || factor > MAX_BURN_FACTOR {
                ctx.error(i, "must be positive and at most 1000000");
                return None;
            }
            Some(factor)
        });
        if let (Some(long), Some(short), Some(factor)) = (long, short, factor) {
            if short >= long {
                ctx.error(
                    element,
                    "the short window must be shorter than the long one",
                );
                continue;
            }
            rules.push(BurnRule {
                long,
                short,
                factor,
            });
        }
    }
    Some(rules)
}

/// Reads one `[[channel]]`.
pub(crate) fn read_channel(
    ctx: &mut Ctx<'_>,
    section: Section<'_>,
    main: &std::path::Path,
) -> Option<ChannelSpec> {
    let errors_before = ctx.error_count();
    section.reject_unknown_keys(ctx, CHANNEL_KEYS, "a [[channel]]");
    let name = required(ctx, &section, "name", "[[channel]]").and_then(|item| ctx.string(item));
    if let Some(name) = &name {
        ctx.set_context(format!("channel \"{name}\""));
    }
    let kind = required(ctx, &section, "kind", "[[channel]]").and_then(|item| {
        ctx.parsed(item, |s| match s {
            "webhook" | "desktop" => Ok(s.to_owned()),
            other => Err(format!(
                "unknown channel kind \"{other}\"; expected \"webhook\" or \"desktop\""
            )),
        })
    });
    let events = match section.get("events") {
        Some(item) => {
            let events = ctx.string_list(item).unwrap_or_default();
            for event in events.iter().filter(|e| !EVENT_NAMES.contains(&e.as_str())) {
                ctx.error(
                    item,
                    format!(
                        "unknown event \"{event}\"; expected some of {}",
                        EVENT_NAMES.join(", ")
                    ),
                );
            }
            events
        }
        None => EVENT_NAMES.iter().map(|e| (*e).to_owned()).collect(),
    };
    let kind = match kind.as_deref() {
        Some("webhook") => {
            let url = required(ctx, &section, "url", "a webhook channel").and_then(|item| {
                ctx.parsed(item, |s| {
                    url::Url::parse(s)
                        .ok()
                        .filter(|u| matches!(u.scheme(), "http" | "https"))
                        .ok_or_else(|| {
                            format!("invalid URL \"{s}\"; expected an http or https URL")
                        })
                })
            });
            let secret = match (section.get("secret"), section.get("secret_file")) {
                (Some(item), Some(_)) => {
                    ctx.error(item, "set either secret or secret_file, not both");
                    None
                }
                (Some(item), None) => ctx.string(item),
                (None, Some(item)) => ctx.parsed(item, |s| {
                    let path = relative_to(main, std::path::Path::new(s));
                    std::fs::read_to_string(&path)
                        .map(|text| text.trim().to_owned())
                        .map_err(|e| format!("cannot read {}: {e}", path.display()))
                }),
                (None, None) => None,
            };
            let format = section
                .get("format")
                .and_then(|item| {
                    ctx.parsed(item, |s| match s {
                        "generic" | "slack" | "discord" => Ok(s.to_owned()),
                        other => Err(format!("unknown format \"{other}\"; expected \"generic\", \"slack\" or \"discord\"")),
                    })
                })
                .unwrap_or_else(|| "generic".to_owned());
            let timeout = section
                .get("timeout")
                .and_then(|item| ctx.duration(item))
                .unwrap_or(Duration::from_secs(10));
            url.map(|url| ChannelKind::Webhook {
                url,
                secret,
                format,
                timeout,
            })
        }
        Some(_) => {
            for key in ["url", "secret", "secret_file", "format", "timeout"] {
                if let Some(item) = section.get(key) {
                    ctx.error(item, "only webhook channels take this key");
                }
            }
            Some(ChannelKind::Desktop)
        }
        None => None,
    };
    if ctx.error_count() > errors_before {
        return None;
    }
    Some(ChannelSpec {
        name: name?,
        kind: kind?,
        events,
    })
}

/// Reads one `[[sla]]`.
pub(crate) fn read_sla(ctx: &mut Ctx<'_>, section: Section<'_>) -> Option<SlaSpec> {
    let errors_before = ctx.error_count();
    section.reject_unknown_keys(ctx, SLA_KEYS, "an [[sla]]");
    let name = required(ctx, &section, "name", "[[sla]]").and_then(|item| ctx.string(item));
    if let Some(name) = &name {
        ctx.set_context(format!("sla \"{name}\""));
    }
    let client = section.get("client").and_then(|item| ctx.string(item));
    let probes =
        required(ctx, &section, "probes", "[[sla]]").and_then(|item| ctx.string_list(item));
    let all = section
        .get("mode")
        .and_then(|item| {
            ctx.parsed(item, |s| match s {
                "all" => Ok(true),
                "any" => Ok(false),
                other => Err(format!(
                    "unknown mode \"{other}\"; expected \"all\" or \"any\""
                )),
            })
        })
        .unwrap_or(true);
    let target = required(ctx, &section, "target", "[[sla]]").and_then(|item| ctx.percent(item));
    let monthly_fee = section.get("monthly_fee").and_then(|item| {
        let fee = ctx.number(item)?;
        // A fee prints in reports and scales credits: past a trillion a month it is a typo
        // (or `1e308`, which turns into "inf EUR" once multiplied).
        if !(0.0..=MAX_MONTHLY_FEE).contains(&fee) {
            ctx.error(item, "must be from 0 to 1000000000000 (a monthly fee)");
            return None;
        }
        Some(fee)
    });
    let currency = section.get("currency").and_then(|item| ctx.string(item));
    let credits = section
        .get("credits")
        .and_then(|item| read_credits(ctx, item))
        .unwrap_or_default();
    let policy = |ctx: &mut Ctx<'_>, key: &str, allow_down: bool| {
        section.get(key).and_then(|item| {
            ctx.parsed(item, |s| match s {
                "exclude" => Ok(TimePolicy::Exclude),
                "up" => Ok(TimePolicy::Up),
                "down" if allow_down => Ok(TimePolicy::Down),
                other if allow_down => Err(format!(
                    "unknown policy \"{other}\"; expected \"exclude\", \"up\" or \"down\""
                )),
                other => Err(format!(
                    "unknown policy \"{other}\"; expected \"exclude\" or \"up\""
                )),
            })
        })
    };
    let maintenance = policy(ctx, "maintenance", false).unwrap_or(TimePolicy::Exclude);
    let unknown = policy(ctx, "unknown", true).unwrap_or(TimePolicy::Exclude);
    let maintenance_notice = section
        .get("maintenance_notice")
        .and_then(|item| ctx.duration(item));
    let degraded_weight = section
        .get("degraded_weight")
        .and_then(|item| {
            let weight = ctx.number(item)?;
            if !(0.0..=1.0).contains(&weight) {
                ctx.error(item, "must be between 0.0 and 1.0");
                return None;
            }
            // Reports compute with exact billionths; say so now rather than at report time.
            if let Err(e) = crate::model::Weight::try_from(weight) {
                ctx.error(item, e.to_string());
                return None;
            }
            Some(weight)
        })
        .unwrap_or(0.0);
    let locations = section
        .get("locations")
        .and_then(|item| super::replication::read_locations(ctx, item));
    let quorum = match (&locations, section.get("quorum")) {
        (_, None) => None,
        (Some(listed), item) => super::replication::read_quorum(ctx, item, listed.len()),
        // Checked against each probe's own locations when reports are made.
        (None, Some(item)) => ctx.integer(item, 1, 1_000),
    };
    let downtime_unit = read_downtime_unit(ctx, &section);
    let latency = section
        .get("latency")
        .and_then(|item| read_latency(ctx, item));
    let latency_credit = section.get("latency_credit").and_then(|item| {
        let credit = ctx.percent(item)?;
        if section.get("latency").is_none() {
            ctx.error(
                item,
                "needs a latency objective (latency = { percentile = 95, below = \"300ms\" })",
            );
            return None;
        }
        Some(credit)
    });
    let report_to = section
        .get("report_to")
        .and_then(|item| ctx.string_list(item))
        .unwrap_or_default();
    if ctx.error_count() > errors_before {
        return None;
    }
    Some(SlaSpec {
        name: name?,
        client,
        probes: probes?,
        all,
        target: target?,
        monthly_fee,
        currency,
        credits,
        maintenance,
        maintenance_notice,
        unknown,
        degraded_weight,
        locations,
        quorum,
        downtime_unit,
        latency,
        latency_credit,
        report_to,
    })
}

/// Reads `latency = { percentile = 95, below = "300ms" }` or `{ share = "99%", below =
/// "500ms" }` (SPEC §10).
fn read_latency(ctx: &mut Ctx<'_>, item: Item<'_>) -> Option<LatencyObjective> {
    let example = "expected a table like { percentile = 95, below = \"300ms\" } or { share = \"99%\", below = \"500ms\" }";
    let Some(table) = item.raw().as_table() else {
        ctx.error(item, example);
        return None;
    };
    let objective = Section {
        file: item.file,
        table,
        span: item.span(),
    };
    let errors_before = ctx.error_count();
    objective.reject_unknown_keys(ctx, LATENCY_KEYS, "a latency objective");
    let rule = match (objective.get("percentile"), objective.get("share")) {
        (Some(percentile), None) => {
            // A bare number (95, 99.9): the percentile's rank, as a percentage of the checks.
            let raw = percentile.raw();
            let text = raw
                .as_integer()
                .map(|i| i.as_str())
                .or_else(|| raw.as_float().map(|f| f.as_str()));
            match text.and_then(|t| t.parse::<Percent>().ok()) {
                Some(p) if p.parts_per_billion() > 0 => Some(LatencyRule::Percentile(p)),
                _ => {
                    ctx.error(
                        percentile,
                        "must be a number above 0 and at most 100, like 95 or 99.9",
                    );
                    None
                }
            }
        }
        (None, Some(share)) => match ctx.percent(share) {
            Some(p) if p.parts_per_billion() > 0 => Some(LatencyRule::Share(p)),
            Some(_) => {
                ctx.error(share, "must be above 0%");
                None
            }
            None => None,
        },
        _ => {
            ctx.error(
                item,
                format!("a latency objective needs exactly one of percentile or share: {example}"),
            );
            None
        }
    };
    let below = match objective.get("below") {
        Some(below) => ctx.duration(below),
        None => {
            ctx.error(item, "a latency objective needs below = \"…ms\"");
            None
        }
    };
    if ctx.error_count() > errors_before {
        return None;
    }
    Some(LatencyObjective {
        rule: rule?,
        below: below?,
    })
}

/// Checks that each name in an `[[sla]]`'s `report_to` is a declared `[[channel]]`, each
/// unknown one reported at its own place in the list. Run once every channel is known
/// (channels with errors of their own count as declared, as for a probe's `channels`).
pub(crate) fn check_report_to(ctx: &mut Ctx<'_>, section: &Section<'_>, known_channels: &[&str]) {
    let Some(item) = section.get("report_to") else {
        return;
    };
    let unknown = |name: &str| format!("unknown channel \"{name}\" (no [[channel]] has that name)");
    match item.raw() {
        DeValue::String(name) if !known_channels.contains(&name.as_ref()) => {
            ctx.error(item, unknown(name));
        }
        DeValue::Array(array) => {
            for element in array.iter() {
                if let DeValue::String(name) = element.get_ref()
                    && !known_channels.contains(&name.as_ref())
                {
                    ctx.error(
                        Item {
                            value: element,
                            ..item
                        },
                        unknown(name),
                    );
                }
            }
        }
        // A value of the wrong type was reported when the SLA was read.
        _ => {}
    }
}

/// Reads `downtime_unit` and `min_downtime_period` (SPEC §10). The period is a whole number
/// of minutes and needs `downtime_unit = "minute"`: a run of seconds has no clock minutes.
fn read_downtime_unit(ctx: &mut Ctx<'_>, section: &Section<'_>) -> DowntimeUnit {
    let minutes = section
        .get("downtime_unit")
        .and_then(|item| {
            ctx.parsed(item, |s| match s {
                "second" => Ok(false),
                "minute" => Ok(true),
                other => Err(format!(
                    "unknown unit \"{other}\"; expected \"second\" or \"minute\""
                )),
            })
        })
        .unwrap_or(false);
    let min_run = section.get("min_downtime_period").and_then(|item| {
        let period = ctx.duration(item)?;
        if !minutes {
            ctx.error(item, "needs downtime_unit = \"minute\"");
            return None;
        }
        if period.subsec_nanos() != 0 || period.as_secs() % 60 != 0 {
            ctx.error(item, "must be a whole number of minutes, like \"5m\"");
            return None;
        }
        match u32::try_from(period.as_secs() / 60) {
            Ok(run) if run <= MAX_MIN_RUN_MINUTES => Some(run),
            _ => {
                ctx.error(item, "must be at most 31 days");
                None
            }
        }
    });
    if minutes {
        DowntimeUnit::Minute {
            min_run: min_run.unwrap_or(1),
        }
    } else {
        DowntimeUnit::Second
    }
}

/// The longest `min_downtime_period` taken, in minutes: a month.
const MAX_MIN_RUN_MINUTES: u32 = 31 * 24 * 60;

fn read_credits(ctx: &mut Ctx<'_>, item: Item<'_>) -> Option<Vec<CreditTier>> {
    let Some(array) = item.raw().as_array() else {
        ctx.error(
            item,
            "expected a list of { below = \"…%\", credit = \"…%\" } tables",
        );
        return None;
    };
    let mut tiers = Vec::new();
    for value in array.iter() {
        let element = Item { value, ..item };
        let Some(table) = value.get_ref().as_table() else {
            ctx.error(
                element,
                "expected a table like { below = \"99.9%\", credit = \"10%\" }",
            );
            continue;
        };
        let tier = Section {
            file: item.file,
            table,
            span: value.span(),
        };
        tier.reject_unknown_keys(ctx, CREDIT_KEYS, "a credit tier");
        let bound = match (tier.get("below"), tier.get("at_or_below")) {
            (Some(below), None) => ctx.percent(below).map(|p| (p, false)),
            (None, Some(at_or_below)) => ctx.percent(at_or_below).map(|p| (p, true)),
            _ => {
                ctx.error(
                    element,
                    "a credit tier needs exactly one of below or at_or_below",
                );
                None
            }
        };
        let lower = match (tier.get("above"), tier.get("at_or_above")) {
            (None, None) => None,
            (Some(above), None) => ctx.percent(above).map(|bound| LowerBound {
                bound,
                inclusive: false,
            }),
            (None, Some(at_or_above)) => ctx.percent(at_or_above).map(|bound| LowerBound {
                bound,
                inclusive: true,
            }),
            (Some(_), Some(_)) => {
                ctx.error(
                    element,
                    "a credit tier takes at most one of above or at_or_above",
                );
                None
            }
        };
        let credit = match tier.get("credit") {
            Some(credit) => ctx.percent(credit),
            None => {
                ctx.error(element, "a credit tier needs credit = \"…%\"");
                None
            }
        };
        if let (Some((bound, inclusive)), Some(credit)) = (bound, credit) {
            let tier = CreditTier {
                bound,
                inclusive,
                lower,
                credit,
            };
            if super::credits::is_empty(&tier) {
                ctx.error(
                    element,
                    "this credit tier holds no availability (its lower bound is not below its upper bound)",
                );
                continue;
            }
            tiers.push(tier);
        }
    }
    if tiers.len() == array.len() {
        for warning in super::credits::table_warnings(&tiers) {
            ctx.warning(item, warning);
        }
    }
    Some(tiers)
}

/// Reads one `[[maintenance]]`.
pub(crate) fn read_maintenance(ctx: &mut Ctx<'_>, section: Section<'_>) -> Option<MaintenanceSpec> {
    let errors_before = ctx.error_count();
    section.reject_unknown_keys(ctx, MAINTENANCE_KEYS, "a [[maintenance]]");
    let probes =
        required(ctx, &section, "probes", "[[maintenance]]").and_then(|item| ctx.string_list(item));
    let reason = section
        .get("reason")
        .and_then(|item| ctx.string(item))
        .unwrap_or_default();
    let duration = section.get("duration").and_then(|item| ctx.duration(item));
    let when = match (section.get("start"), section.get("weekly")) {
        (Some(start_item), None) => {
            let start = read_timestamp(ctx, start_item);
            let end = match (section.get("end"), duration) {
                (Some(end_item), None) => read_timestamp(ctx, end_item),
                (None, Some(duration)) => start.and_then(|s| {
                    jiff::SignedDuration::try_from(duration)
                        .ok()
                        .and_then(|d| s.checked_add(d).ok())
                }),
                (Some(end_item), Some(_)) => {
                    ctx.error(end_item, "set either end or duration, not both");
                    None
                }
                (None, None) => {
                    ctx.error(start_item, "a one-off window needs end or duration");
                    None
                }
            };
            if let (Some(start), Some(end), Some(end_item)) = (start, end, section.get("end"))
                && end <= start
            {
                ctx.error(end_item, "must be after start");
            }
            match (start, end) {
                (Some(start), Some(end)) => Some(MaintenanceWhen::Once { start, end }),
                _ => None,
            }
        }
        (None, Some(weekly_item)) => {
            let at = ctx.parsed(weekly_item, parse_weekly);
            if duration.is_none() && section.get("duration").is_none() {
                ctx.error(weekly_item, "a weekly window needs duration");
            }
            if let Some(item) = section.get("end") {
                ctx.error(item, "a weekly window takes duration, not end");
            }
            match (at, duration) {
                (Some((weekday, time)), Some(duration))
                    if duration <= Duration::from_secs(7 * 24 * 3600) =>
                {
                    Some(MaintenanceWhen::Weekly {
                        weekday,
                        time,
                        duration,
                    })
                }
                (Some(_), Some(_)) => {
                    if let Some(item) = section.get("duration") {
                        ctx.error(item, "a weekly window lasts at most 7 days");
                    }
                    None
                }
                _ => None,
            }
        }
        (Some(item), Some(_)) => {
            ctx.error(
                item,
                "set either start (one-off) or weekly (recurring), not both",
            );
            None
        }
        (None, None) => {
            ctx.error_at(
                section.file,
                &section.span,
                "a [[maintenance]] needs start or weekly".into(),
            );
            None
        }
    };
    if ctx.error_count() > errors_before {
        return None;
    }
    Some(MaintenanceSpec {
        probes: probes?,
        when: when?,
        reason,
    })
}

/// An instant: a TOML offset date-time or an RFC 3339 string, with an offset.
fn read_timestamp(ctx: &mut Ctx<'_>, item: Item<'_>) -> Option<Timestamp> {
    let text = match item.raw() {
        DeValue::Datetime(datetime) => datetime.to_string(),
        DeValue::String(_) => ctx.string(item)?,
        _ => {
            ctx.error(item, "expected a date-time like 2026-11-30T02:00:00Z");
            return None;
        }
    };
    match Timestamp::from_str(&text) {
        Ok(ts) => Some(ts),
        Err(_) => {
            ctx.error(item, format!("invalid date-time \"{text}\": expected RFC 3339 with a UTC offset, like 2026-11-30T02:00:00Z"));
            None
        }
    }
}

/// `"Sun 03:00"` → weekday and local time.
fn parse_weekly(text: &str) -> Result<(Weekday, jiff::civil::Time), String> {
    let bad = || {
        format!("invalid weekly time \"{text}\"; expected a weekday and HH:MM, like \"Sun 03:00\"")
    };
    let (day, time) = text.trim().split_once(' ').ok_or_else(bad)?;
    let weekday = match day.to_ascii_lowercase().as_str() {
        "mon" | "monday" => Weekday::Monday,
        "tue" | "tuesday" => Weekday::Tuesday,
        "wed" | "wednesday" => Weekday::Wednesday,
        "thu" | "thursday" => Weekday::Thursday,
        "fri" | "friday" => Weekday::Friday,
        "sat" | "saturday" => Weekday::Saturday,
        "sun" | "sunday" => Weekday::Sunday,
        _ => return Err(bad()),
    };
    let (hour, minute) = time.trim().split_once(':').ok_or_else(bad)?;
    let hour: i8 = hour.parse().map_err(|_| bad())?;
    let minute: i8 = minute.parse().map_err(|_| bad())?;
    let time = jiff::civil::Time::new(hour, minute, 0, 0).map_err(|_| bad())?;
    Ok((weekday, time))
}

/// The item under `key`, or a "missing key" report at the section.
fn required<'a>(
    ctx: &mut Ctx<'_>,
    section: &Section<'a>,
    key: &str,
    what: &str,
) -> Option<Item<'a>> {
    let item = section.get(key);
    if item.is_none() {
        ctx.error_at(
            section.file,
            &section.span,
            format!("missing key \"{key}\" in {what}"),
        );
    }
    item
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_one_clean_line_that_is_no_signature() {
        for good in [
            "status.example.com/upledger",
            "upledger/host-1",
            "a—b",
            "—x",
        ] {
            assert_eq!(check_origin(good), Ok(()), "{good}");
        }
        for bad in ["", " x", "x ", "a\nb", "a\rb", "— x", "\t"] {
            assert!(check_origin(bad).is_err(), "{bad:?}");
        }
        assert!(default_origin().starts_with("upledger/"));
        assert_eq!(check_origin(&default_origin()), Ok(()));
    }

    #[test]
    fn leaf_hours_tile_a_day() {
        for good in [1, 2, 60, 90, 3600, 7200, 86_400] {
            assert_eq!(check_leaf_hour(Duration::from_secs(good)), Ok(()), "{good}");
        }
        for bad in [
            Duration::from_millis(500),
            Duration::from_secs(7),
            Duration::from_secs(172_800),
        ] {
            assert!(check_leaf_hour(bad).is_err(), "{bad:?}");
        }
    }

    /// Loads a configuration whose main file is `main` (and one probe), returning it or its
    /// diagnostics, one a line.
    fn load_main(main: &str) -> (tempfile::TempDir, Result<super::super::Config, String>) {
        crate::config::load_in_folder(main, &[])
    }

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEHSFIKYZKByKk40Iif5JAru1XVeJRGAEtWnuYCPooMY w";

    #[test]
    fn witnesses_and_the_witness_section_are_read() {
        let (dir, loaded) = load_main(&format!(
            "[evidence]\nsigning_key = \"k\"\norigin = \"log.example/a\"\n\
             witnesses = [{{ url = \"http://127.0.0.1:9475\", key = \"{KEY}\" }}]\n\n\
             [witness]\nsilence = \"10m\"\nlogs = [{{ origin = \"vendor.example/log\", key = \"{KEY}\" }}]\n"
        ));
        let config = loaded.expect("valid");
        assert_eq!(config.evidence.witnesses.len(), 1);
        assert_eq!(
            config.evidence.witnesses[0].url.as_str(),
            "http://127.0.0.1:9475/"
        );
        let witness = config.witness.expect("a witness");
        assert_eq!(
            witness.name, "log.example/a",
            "named after the log by default"
        );
        assert_eq!(witness.signing_key, dir.path().join("k"));
        assert_eq!(witness.silence, Duration::from_secs(600));
        assert_eq!(witness.logs[0].origin, "vendor.example/log");
        let (_dir, loaded) = load_main("[daemon]\nledger = \"l\"\n");
        let config = loaded.expect("valid");
        assert!(config.witness.is_none() && config.evidence.witnesses.is_empty());
        assert_eq!(DEFAULT_LOG_SILENCE, Duration::from_secs(7200));
    }

    #[test]
    fn bad_witness_settings_are_each_named_at_their_line() {
        let (_dir, loaded) = load_main(&format!(
            "[evidence]\n\
             witnesses = [{{ url = \"ftp://x\", key = \"{KEY}\" }}, {{ url = \"http://w\", key = \"ssh-rsa AAAA\" }}]\n\n\
             [witness]\nlogs = [{{ origin = \"a\" }}]\n"
        ));
        let error = loaded.expect_err("invalid");
        assert!(error.contains("upledger.toml:2:"), "{error}");
        assert!(
            error.contains("a witness URL is http:// or https://, not ftp://"),
            "{error}"
        );
        assert!(error.contains("not an OpenSSH public key"), "{error}");
        assert!(error.contains("missing key \"key\""), "{error}");
        assert!(
            error.contains("a witness signs its cosignatures"),
            "{error}"
        );
        let (_dir, loaded) = load_main(&format!(
            "[evidence]\nwitnesses = [{{ url = \"http://w\", key = \"{KEY}\" }}]\n"
        ));
        assert!(
            loaded
                .expect_err("no key")
                .contains("witnesses cosign signed checkpoints: set signing_key"),
        );
    }

    #[test]
    fn the_evidence_section_has_defaults_and_relative_key_paths() {
        let (_dir, loaded) = load_main("[daemon]\nledger = \"l\"\n");
        let evidence = loaded.expect("valid").evidence;
        assert_eq!(evidence.signing_key, None);
        assert_eq!(evidence.origin, default_origin());
        assert_eq!(evidence.hour, Duration::from_secs(3600));

        let (dir, loaded) = load_main(
            "[evidence]\nsigning_key = \"keys/upledger\"\norigin = \"status.example.com/upledger\"\n\
             hour = \"2s\"\n",
        );
        let evidence = loaded.expect("valid").evidence;
        assert_eq!(evidence.signing_key, Some(dir.path().join("keys/upledger")));
        assert_eq!(evidence.origin, "status.example.com/upledger");
        assert_eq!(evidence.hour, Duration::from_secs(2));
        let (_dir, loaded) = load_main("[evidence]\nsigning_key = \"/etc/upledger/key\"\n");
        assert_eq!(
            loaded.expect("valid").evidence.signing_key,
            Some(PathBuf::from("/etc/upledger/key"))
        );
    }

    #[test]
    fn bad_evidence_settings_are_each_named_at_their_line() {
        let (_dir, loaded) = load_main(
            "[evidence]\norigin = \"— upledger\"\nhour = \"7s\"\nbogus_key = 1\n\n[evidence2]\n",
        );
        let errors = loaded.expect_err("invalid");
        for expected in [
            "upledger.toml:2:10: [evidence]: origin: must not start with \"— \"",
            "upledger.toml:3:8: [evidence]: hour: must divide 24h evenly (7s does not)",
            "upledger.toml:4:1: unknown key \"bogus_key\" in [evidence]",
            "upledger.toml:6:2: unknown key \"evidence2\"",
        ] {
            assert!(errors.contains(expected), "{expected} not in:\n{errors}");
        }
        let (_dir, loaded) = load_main("[[evidence]]\norigin = \"x\"\n");
        assert!(
            loaded
                .expect_err("invalid")
                .contains("expected a [evidence] table")
        );
    }

    /// A main file with one `[[sla]]` over the probe `web`, with `extra` keys.
    fn sla_main(extra: &str) -> String {
        format!("[[sla]]\nname = \"acme\"\nprobes = [\"web\"]\ntarget = \"99.9%\"\n{extra}")
    }

    #[test]
    fn downtime_is_counted_in_seconds_unless_minutes_are_asked_for() {
        let unit = |extra: &str| {
            let (_dir, loaded) = load_main(&sla_main(extra));
            loaded.map(|config| config.slas[0].downtime_unit)
        };
        assert_eq!(unit(""), Ok(DowntimeUnit::Second));
        assert_eq!(
            unit("downtime_unit = \"second\"\n"),
            Ok(DowntimeUnit::Second)
        );
        assert_eq!(
            unit("downtime_unit = \"minute\"\n"),
            Ok(DowntimeUnit::Minute { min_run: 1 })
        );
        assert_eq!(
            unit("downtime_unit = \"minute\"\nmin_downtime_period = \"5m\"\n"),
            Ok(DowntimeUnit::Minute { min_run: 5 })
        );
        for (extra, message) in [
            (
                "downtime_unit = \"hour\"\n",
                "upledger.toml:5:17: sla \"acme\": downtime_unit: unknown unit \"hour\"; expected \"second\" or \"minute\"",
            ),
            (
                "min_downtime_period = \"5m\"\n",
                "upledger.toml:5:23: sla \"acme\": min_downtime_period: needs downtime_unit = \"minute\"",
            ),
            (
                "downtime_unit = \"minute\"\nmin_downtime_period = \"90s\"\n",
                "upledger.toml:6:23: sla \"acme\": min_downtime_period: must be a whole number of minutes, like \"5m\"",
            ),
            (
                "downtime_unit = \"minute\"\nmin_downtime_period = \"32days\"\n",
                "min_downtime_period: must be at most 31 days",
            ),
        ] {
            let error = unit(extra).expect_err(extra);
            assert!(error.contains(message), "{message} not in:\n{error}");
        }
    }

    #[test]
    fn report_to_names_declared_channels_and_an_unknown_one_is_located() {
        let channels = "[[channel]]\nname = \"ops\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\n\n\
                        [[channel]]\nname = \"desk\"\nkind = \"desktop\"\n\n";
        let report_to = |main: &str| {
            let (_dir, loaded) = load_main(main);
            loaded.map(|config| config.slas[0].report_to.clone())
        };
        assert_eq!(report_to(&sla_main("")), Ok(Vec::new()));
        assert_eq!(
            report_to(&format!(
                "{channels}{}",
                sla_main("report_to = [\"ops\", \"desk\"]\n")
            )),
            Ok(vec!["ops".to_owned(), "desk".to_owned()])
        );
        assert_eq!(
            report_to(&format!("{channels}{}", sla_main("report_to = \"ops\"\n"))),
            Ok(vec!["ops".to_owned()])
        );
        // Each unknown name at its own place in the list (line 14: nine lines of channels first).
        let error = report_to(&format!(
            "{channels}{}",
            sla_main("report_to = [\"ops\", \"opz\", \"pager\"]\n")
        ))
        .expect_err("unknown channels");
        for expected in [
            "upledger.toml:14:21: sla \"acme\": report_to: unknown channel \"opz\" (no [[channel]] has that name)",
            "upledger.toml:14:28: sla \"acme\": report_to: unknown channel \"pager\" (no [[channel]] has that name)",
        ] {
            assert!(error.contains(expected), "{expected} not in:\n{error}");
        }
        assert!(!error.contains("\"ops\" (no"), "{error}");
        let error = report_to(&sla_main("report_to = \"ops\"\n")).expect_err("no channels");
        assert!(
            error.contains(
                "upledger.toml:5:13: sla \"acme\": report_to: unknown channel \"ops\" (no [[channel]] has that name)"
            ),
            "{error}"
        );
        let error = report_to(&sla_main("report_to = [1]\n")).expect_err("not a name");
        assert!(
            error.contains("upledger.toml:5:14: sla \"acme\": report_to:"),
            "{error}"
        );
    }

    #[test]
    fn credit_tiers_may_be_closed_bands() {
        let (_dir, loaded) = load_main(&sla_main(
            "credits = [ { above = \"99.0%\", at_or_below = \"99.9%\", credit = \"10%\" },\n\
             { at_or_above = \"95%\", below = \"99.0%\", credit = \"25%\" },\n\
             { below = \"95%\", credit = \"50%\" } ]\n",
        ));
        let config = loaded.expect("valid");
        let credits = &config.slas[0].credits;
        let lower = |i: usize| credits[i].lower.map(|l| (l.bound.to_string(), l.inclusive));
        assert_eq!(lower(0), Some(("99%".to_owned(), false)));
        assert_eq!(lower(1), Some(("95%".to_owned(), true)));
        assert_eq!(lower(2), None);
        assert!(credits[0].inclusive && !credits[1].inclusive);
        // The gap at exactly 99.0 % is a located warning; the configuration stays valid.
        let warnings: Vec<String> = config.warnings().iter().map(|w| w.to_string()).collect();
        assert_eq!(warnings.len(), 1, "exactly one warning: {warnings:?}");
        assert!(
            warnings[0].ends_with(
                "upledger.toml:5:11: sla \"acme\": credits leave exactly 99% uncovered (no tier applies there, so no credit is owed)"
            ),
            "{warnings:?}"
        );
        let (_dir, loaded) = load_main(&sla_main(
            "credits = [ { below = \"99.9%\", credit = \"10%\" }, { below = \"99%\", credit = \"25%\" } ]\n",
        ));
        assert!(loaded.expect("valid").warnings().is_empty());
    }

    #[test]
    fn bad_closed_bands_are_errors() {
        let (_dir, loaded) = load_main(&sla_main(
            "credits = [ { above = \"99.9%\", below = \"99%\", credit = \"10%\" },\n\
             { above = \"1%\", at_or_above = \"2%\", below = \"3%\", credit = \"1%\" },\n\
             { at_or_above = \"101%\", below = \"3%\", credit = \"1%\" } ]\n",
        ));
        let error = loaded.expect_err("invalid");
        for expected in [
            "upledger.toml:5:13: sla \"acme\": credits: this credit tier holds no availability",
            "upledger.toml:6:1: sla \"acme\": credits: a credit tier takes at most one of above or at_or_above",
            "upledger.toml:7:17: sla \"acme\": at_or_above: invalid percentage",
        ] {
            assert!(error.contains(expected), "{expected} not in:\n{error}");
        }
    }

    #[test]
    fn weekly_forms() {
        let (day, time) = parse_weekly("Sun 03:00").unwrap();
        assert_eq!(day, Weekday::Sunday);
        assert_eq!(time, jiff::civil::time(3, 0, 0, 0));
        assert!(parse_weekly("Funday 03:00").is_err());
        assert!(parse_weekly("Sun 25:00").is_err());
        assert!(parse_weekly("Sun").is_err());
    }

    #[test]
    fn latency_objectives_read_in_both_forms_and_bad_ones_are_located() {
        let sla = |extra: &str| {
            let (_dir, loaded) = load_main(&format!(
                "[daemon]\nledger = \"l\"\n\n[[sla]]\nname = \"acme\"\nprobes = [\"*\"]\ntarget = \"99%\"\n{extra}"
            ));
            loaded.map(|config| (config.slas[0].latency, config.slas[0].latency_credit))
        };
        let pct = |text: &str| text.parse::<Percent>().expect("a percentage");
        assert_eq!(
            sla("latency = { percentile = 99.9, below = \"300ms\" }\nlatency_credit = \"5%\"\n"),
            Ok((
                Some(LatencyObjective {
                    rule: LatencyRule::Percentile(pct("99.9")),
                    below: Duration::from_millis(300),
                }),
                Some(pct("5%"))
            ))
        );
        assert_eq!(
            sla("latency = { share = \"99%\", below = \"1s\" }\n"),
            Ok((
                Some(LatencyObjective {
                    rule: LatencyRule::Share(pct("99%")),
                    below: Duration::from_secs(1),
                }),
                None
            ))
        );
        for (extra, message) in [
            (
                "latency_credit = \"5%\"\n",
                "upledger.toml:8:18: sla \"acme\": latency_credit: needs a latency objective",
            ),
            (
                "latency = { percentile = 0, below = \"300ms\" }\n",
                "upledger.toml:8:26: sla \"acme\": percentile: must be a number above 0 and at most 100",
            ),
            (
                "latency = { percentile = 101, below = \"300ms\" }\n",
                "must be a number above 0 and at most 100",
            ),
            (
                "latency = { share = \"99%\" }\n",
                "upledger.toml:8:11: sla \"acme\": latency: a latency objective needs below",
            ),
            (
                "latency = { share = \"99%\", below = \"300ms\", above = \"1ms\" }\n",
                "above",
            ),
            ("latency = \"300ms\"\n", "expected a table like"),
        ] {
            let error = sla(extra).expect_err(extra);
            assert!(error.contains(message), "{extra}: {error}");
        }
    }
}
