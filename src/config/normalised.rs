//! The normalised configuration: exactly what the SPEC §3 engine reads to compute a report —
//! the time zone, each probe's terms, every SLA and maintenance window, the `[evidence]`
//! settings — in one canonical, versioned JSON form, and nothing else: no URL, host, header,
//! body, secret, channel or path. The ledger commits to its hash when a configuration is
//! loaded, and an evidence bundle carries it, so `upledger verify` recomputes a report under
//! the very terms it was made with (SPEC §8).
//!
//! # Canonical form (version 1)
//!
//! Compact JSON (no whitespace), fields in the order of the structs below, probes, SLAs and
//! windows in configuration order. Durations are integer **milliseconds** (`*_ms`), so a
//! duration with a part below a millisecond has no normalised form. Percentages are their
//! exact decimal text (`"99.95%"`), instants RFC 3339 UTC, fees and weights JSON numbers (the
//! shortest text that reads back as the same `f64`). An absent optional value is `null`,
//! never left out, so one configuration has one form and one hash — except for keys added
//! after this form was first written (locations and quorum, SPEC §9; `downtime_unit`,
//! `min_downtime_period_ms`, a credit band's `lower`, `latency` and `latency_credit`, SPEC
//! §10): those are left out when
//! they hold their default, so a configuration not using them keeps the form and hash it had.
//! An SLA's `report_to` (SPEC §10) names channels, which decide where a report goes and no
//! figure in it, so it is not part of the form at all: setting it keeps the hash.
//! May use `model` and the rest of `config`.

use std::{path::PathBuf, time::Duration};

use jiff::{Timestamp, civil::Weekday, tz::TimeZone};
use serde::{Deserialize, Serialize};

use super::{
    main_file::{check_leaf_hour, check_origin},
    spec::{
        CheckSpec, Config, CreditTier, DEFAULT_BURN_RULES, DaemonSpec, DowntimeUnit, EvidenceSpec,
        LatencyObjective, LatencyRule, LowerBound, MaintenanceSpec, MaintenanceWhen, Origin,
        ProbeSpec, SlaSpec, TimePolicy,
    },
};
use crate::model::{LocationName, Percent, ProbeKind, ProbeName};

/// The version of the form this build writes and reads.
pub const NORMALISED_VERSION: u32 = 1;

/// Why a configuration has no normalised form, or a normalised text is not a configuration.
#[derive(Debug, thiserror::Error)]
pub enum NormalisedError {
    /// The text is not the JSON of a normalised configuration.
    #[error("normalised configuration: {0}")]
    Json(#[from] serde_json::Error),
    /// Written by a build that knows another version of the form.
    #[error(
        "normalised configuration: version {0} is not supported (this build reads version {NORMALISED_VERSION})"
    )]
    Version(u32),
    /// A duration has a part below a millisecond, which the form cannot hold.
    #[error("normalised configuration: {what} ({duration}) is not a whole number of milliseconds")]
    SubMillisecond {
        /// Which duration, e.g. `probe "web": timeout`.
        what: String,
        /// Its value, as a person writes it.
        duration: String,
    },
    /// A value cannot be part of a configuration.
    #[error("normalised configuration: {what}: {message}")]
    Invalid {
        /// Where, e.g. `probe "web"`.
        what: String,
        /// What is wrong.
        message: String,
    },
}

/// A configuration reduced to the terms reports are computed under (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NormalisedConfig {
    /// The form's version: [`NORMALISED_VERSION`].
    pub version: u32,
    /// The IANA time zone months are measured in.
    pub timezone: String,
    /// Every probe, in configuration order.
    pub probes: Vec<NormalisedProbe>,
    /// Every `[[sla]]`, in configuration order.
    pub slas: Vec<NormalisedSla>,
    /// Every `[[maintenance]]`, in configuration order.
    pub maintenance: Vec<NormalisedMaintenance>,
    /// The `[evidence]` settings that shape the log (the key's path stays behind: the public
    /// key travels on its own).
    pub evidence: NormalisedEvidence,
}

/// A probe's terms: how it is timed and judged, not what it checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NormalisedProbe {
    /// Its name.
    pub name: ProbeName,
    /// The kind of check it ran.
    pub kind: ProbeKind,
    /// Disabled probes are in no report.
    pub enabled: bool,
    /// Time between check starts.
    pub interval_ms: u64,
    /// Longest a check may take.
    pub timeout_ms: u64,
    /// How long one result stands.
    pub stale_after_ms: u64,
    /// Consecutive failures before down.
    pub failure_threshold: u32,
    /// Consecutive successes before an incident is resolved.
    pub success_threshold: u32,
    /// Slower checks are degraded.
    pub degraded_after_ms: Option<u64>,
    /// Monthly target, exact text.
    #[serde(with = "percent_text")]
    pub target: Percent,
    /// The locations whose quorum decides its state (SPEC §9); absent for one location, so
    /// a configuration without locations normalises as it did before they existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<LocationName>,
    /// Their quorum; absent with `locations`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<usize>,
}

/// An `[[sla]]` with every field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NormalisedSla {
    /// Its name.
    pub name: String,
    /// The client.
    pub client: Option<String>,
    /// Probe name globs.
    pub probes: Vec<String>,
    /// `all` or `any`.
    pub mode: NormalisedMode,
    /// The target, exact text.
    #[serde(with = "percent_text")]
    pub target: Percent,
    /// Monthly fee.
    pub monthly_fee: Option<f64>,
    /// Currency of the fee.
    pub currency: Option<String>,
    /// Credit bands, in configuration order.
    pub credits: Vec<NormalisedCredit>,
    /// How maintenance time counts.
    pub maintenance: NormalisedPolicy,
    /// Notice a window needs.
    pub maintenance_notice_ms: Option<u64>,
    /// How unknown time counts.
    pub unknown: NormalisedPolicy,
    /// Share of degraded time counted as down.
    pub degraded_weight: f64,
    /// The locations counted for it, when it names its own (SPEC §9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locations: Option<Vec<LocationName>>,
    /// Its own quorum, when it sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<usize>,
    /// `minute` when only whole down minutes count (SPEC §10); absent for seconds, the
    /// default, so a configuration without it normalises as before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downtime_unit: Option<NormalisedDowntimeUnit>,
    /// The shortest run of down minutes that counts, when longer than one minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_downtime_period_ms: Option<u64>,
    /// The response-time objective, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<NormalisedLatency>,
    /// The credit added when it is missed, exact text.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "option_percent_text"
    )]
    pub latency_credit: Option<Percent>,
}

/// A latency objective: `{"kind":"percentile","percent":"95%","below_ms":300}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NormalisedLatency {
    /// `percentile` or `share`.
    pub kind: NormalisedLatencyKind,
    /// The percentile's rank or the share, exact text.
    #[serde(with = "percent_text")]
    pub percent: Percent,
    /// The bound.
    pub below_ms: u64,
}

/// The form of a latency objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NormalisedLatencyKind {
    /// `latency = { percentile, below }`.
    Percentile,
    /// `latency = { share, below }`.
    Share,
}

/// A downtime unit other than the default second: the only one is `minute`, so the default
/// has one form (absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NormalisedDowntimeUnit {
    /// Whole clock minutes entirely down.
    Minute,
}

/// How an SLA composes its probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NormalisedMode {
    /// Down while any probe is down.
    All,
    /// Down only while every probe is down.
    Any,
}

/// What a kind of time counts as ([`TimePolicy`] in its config spelling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NormalisedPolicy {
    /// Left out of the denominator.
    Exclude,
    /// Counted as available.
    Up,
    /// Counted as downtime.
    Down,
}

/// A credit band.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NormalisedCredit {
    /// The availability bound, exact text.
    #[serde(with = "percent_text")]
    pub bound: Percent,
    /// `at_or_below` (≤) when true, `below` (<) when false.
    pub inclusive: bool,
    /// The lower bound of a closed band (SPEC §10); absent for a band reaching down to 0 %.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lower: Option<NormalisedLowerBound>,
    /// Credit in percent of the fee, exact text.
    #[serde(with = "percent_text")]
    pub credit: Percent,
}

/// The lower bound of a closed credit band.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NormalisedLowerBound {
    /// The availability bound, exact text.
    #[serde(with = "percent_text")]
    pub bound: Percent,
    /// `at_or_above` (≥) when true, `above` (>) when false.
    pub inclusive: bool,
}

/// A `[[maintenance]]` window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NormalisedMaintenance {
    /// Probe name globs.
    pub probes: Vec<String>,
    /// When.
    pub when: NormalisedWhen,
    /// Why.
    pub reason: String,
}

/// When a window happens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum NormalisedWhen {
    /// Once.
    Once {
        /// Start.
        start: Timestamp,
        /// End (exclusive).
        end: Timestamp,
    },
    /// Every week at a local time in the configuration's time zone.
    Weekly {
        /// ISO weekday: 1 Monday … 7 Sunday.
        weekday: i8,
        /// Local time of day, `HH:MM`.
        time: String,
        /// Length.
        duration_ms: u64,
    },
}

/// The `[evidence]` settings that shape the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NormalisedEvidence {
    /// The log's name.
    pub origin: String,
    /// The length of a leaf's hour.
    pub hour_ms: u64,
}

impl NormalisedConfig {
    /// The normalised form of `config`; fails only for a duration with a part below a
    /// millisecond.
    pub fn from_config(config: &Config) -> Result<NormalisedConfig, NormalisedError> {
        let probes = config
            .probes
            .iter()
            .map(normalise_probe)
            .collect::<Result<_, _>>()?;
        let slas = config
            .slas
            .iter()
            .map(normalise_sla)
            .collect::<Result<_, _>>()?;
        let maintenance = config
            .maintenance
            .iter()
            .enumerate()
            .map(|(i, window)| normalise_window(i, window))
            .collect::<Result<_, _>>()?;
        Ok(NormalisedConfig {
            version: NORMALISED_VERSION,
            timezone: config.daemon.timezone_name.clone(),
            probes,
            slas,
            maintenance,
            evidence: NormalisedEvidence {
                origin: config.evidence.origin.clone(),
                hour_ms: millis("[evidence] hour", config.evidence.hour)?,
            },
        })
    }

    /// The canonical bytes (see the module docs): what [`NormalisedConfig::sha256`] hashes.
    pub fn to_json(&self) -> Vec<u8> {
        // Plain structs of strings, numbers and lists: serialising cannot fail, and a
        // non-finite float cannot get here (configuration and `from_json` refuse them).
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// SHA-256 of [`NormalisedConfig::to_json`]: the configuration's identity in the log.
    pub fn sha256(&self) -> [u8; 32] {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &self.to_json());
        let mut hash = [0u8; 32];
        hash.copy_from_slice(digest.as_ref());
        hash
    }

    /// Reads a normalised configuration, refusing unknown fields and other versions.
    pub fn from_json(bytes: &[u8]) -> Result<NormalisedConfig, NormalisedError> {
        #[derive(Deserialize)]
        struct Versioned {
            version: u32,
        }
        // The version first, so a newer form is named as such rather than as unknown fields.
        let Versioned { version } = serde_json::from_slice(bytes)?;
        if version != NORMALISED_VERSION {
            return Err(NormalisedError::Version(version));
        }
        Ok(serde_json::from_slice(bytes)?)
    }

    /// A [`Config`] the report code accepts: the terms as they were, each probe's check
    /// [`CheckSpec::Withheld`], and neutral daemon settings (no ledger, socket or listener is
    /// ever opened from it). Checked like a configuration file, since the text may come from
    /// anyone.
    pub fn into_config(self) -> Result<Config, NormalisedError> {
        let timezone = TimeZone::get(&self.timezone).map_err(|_| NormalisedError::Invalid {
            what: "timezone".to_owned(),
            message: format!("unknown time zone \"{}\"", self.timezone),
        })?;
        let mut probes: Vec<ProbeSpec> = Vec::with_capacity(self.probes.len());
        for probe in self.probes {
            if probes.iter().any(|p| p.name == probe.name) {
                return Err(invalid(
                    format!("probe \"{}\"", probe.name),
                    "is named twice",
                ));
            }
            probes.push(probe_spec(probe)?);
        }
        let slas = self
            .slas
            .into_iter()
            .map(sla_spec)
            .collect::<Result<_, _>>()?;
        let maintenance = self
            .maintenance
            .into_iter()
            .enumerate()
            .map(|(i, window)| maintenance_spec(i, window))
            .collect::<Result<_, _>>()?;
        let hour = Duration::from_millis(self.evidence.hour_ms);
        check_origin(&self.evidence.origin)
            .map_err(|message| invalid("[evidence] origin".to_owned(), message))?;
        check_leaf_hour(hour).map_err(|message| invalid("[evidence] hour".to_owned(), message))?;
        let nowhere = PathBuf::new();
        let daemon = DaemonSpec {
            ledger: nowhere.clone(),
            // Evidence is read where no probe runs.
            location: LocationName::sanitized("evidence"),
            probes_dir: nowhere.clone(),
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            socket: nowhere.clone(),
            timezone_name: self.timezone,
            timezone,
            max_concurrency: 1,
            retention: Duration::MAX,
            sentinel: None,
            show_details: false,
            alert_retry_for: Duration::ZERO,
            burn_rates: DEFAULT_BURN_RULES.to_vec(),
            clock_step_threshold: Duration::from_secs(2),
            socket_group: None,
            admin_group: None,
        };
        Ok(Config::new(
            nowhere,
            daemon,
            probes,
            Vec::new(),
            slas,
            maintenance,
            EvidenceSpec {
                signing_key: None,
                origin: self.evidence.origin,
                hour,
                witnesses: Vec::new(),
            },
        ))
    }
}

fn invalid(what: String, message: impl Into<String>) -> NormalisedError {
    NormalisedError::Invalid {
        what,
        message: message.into(),
    }
}

/// `duration` in whole milliseconds.
fn millis(what: &str, duration: Duration) -> Result<u64, NormalisedError> {
    let ms = duration.as_millis();
    if !duration.subsec_nanos().is_multiple_of(1_000_000) {
        return Err(NormalisedError::SubMillisecond {
            what: what.to_owned(),
            duration: humantime::format_duration(duration).to_string(),
        });
    }
    u64::try_from(ms).map_err(|_| NormalisedError::SubMillisecond {
        what: what.to_owned(),
        duration: humantime::format_duration(duration).to_string(),
    })
}

fn normalise_probe(spec: &ProbeSpec) -> Result<NormalisedProbe, NormalisedError> {
    let what = |field: &str| format!("probe \"{}\": {field}", spec.name);
    Ok(NormalisedProbe {
        name: spec.name.clone(),
        kind: spec.kind(),
        enabled: spec.enabled,
        interval_ms: millis(&what("interval"), spec.interval)?,
        timeout_ms: millis(&what("timeout"), spec.timeout)?,
        stale_after_ms: millis(&what("stale_after"), spec.stale_after)?,
        failure_threshold: spec.failure_threshold,
        success_threshold: spec.success_threshold,
        degraded_after_ms: spec
            .degraded_after
            .map(|d| millis(&what("degraded_after"), d))
            .transpose()?,
        target: spec.target,
        locations: spec.locations.clone(),
        quorum: (!spec.locations.is_empty()).then_some(spec.quorum),
    })
}

fn probe_spec(probe: NormalisedProbe) -> Result<ProbeSpec, NormalisedError> {
    let what = || format!("probe \"{}\"", probe.name);
    let interval = Duration::from_millis(probe.interval_ms);
    let timeout = Duration::from_millis(probe.timeout_ms);
    let stale_after = Duration::from_millis(probe.stale_after_ms);
    if timeout.is_zero() || timeout >= interval {
        return Err(invalid(
            what(),
            "timeout must be longer than zero and shorter than interval",
        ));
    }
    if stale_after < interval {
        return Err(invalid(what(), "stale_after must be at least the interval"));
    }
    if probe.failure_threshold == 0 || probe.success_threshold == 0 {
        return Err(invalid(what(), "thresholds must be at least 1"));
    }
    Ok(ProbeSpec {
        origin: Origin {
            file: PathBuf::new(),
            line: 0,
        },
        interval,
        timeout,
        failure_threshold: probe.failure_threshold,
        success_threshold: probe.success_threshold,
        stale_after,
        target: probe.target,
        degraded_after: probe.degraded_after_ms.map(Duration::from_millis),
        // Nothing is ever sent about a probe read from evidence.
        channels: Some(Vec::new()),
        remind_every: None,
        tags: Vec::new(),
        description: None,
        display_name: None,
        group: None,
        enabled: probe.enabled,
        public: false,
        quorum: match (probe.locations.len(), probe.quorum) {
            (0, _) => 1,
            (n, Some(q)) if (1..=n).contains(&q) => q,
            (n, None) => crate::config::majority(n),
            (n, Some(q)) => {
                return Err(invalid(
                    what(),
                    format!("quorum {q} is not from 1 to its {n} location(s)"),
                ));
            }
        },
        locations: probe.locations,
        check: CheckSpec::Withheld(probe.kind),
        name: probe.name,
    })
}

fn normalise_sla(sla: &SlaSpec) -> Result<NormalisedSla, NormalisedError> {
    let policy = |p: TimePolicy| match p {
        TimePolicy::Exclude => NormalisedPolicy::Exclude,
        TimePolicy::Up => NormalisedPolicy::Up,
        TimePolicy::Down => NormalisedPolicy::Down,
    };
    Ok(NormalisedSla {
        name: sla.name.clone(),
        client: sla.client.clone(),
        probes: sla.probes.clone(),
        mode: if sla.all {
            NormalisedMode::All
        } else {
            NormalisedMode::Any
        },
        target: sla.target,
        monthly_fee: sla.monthly_fee,
        currency: sla.currency.clone(),
        credits: sla
            .credits
            .iter()
            .map(|tier| NormalisedCredit {
                bound: tier.bound,
                inclusive: tier.inclusive,
                lower: tier.lower.map(|lower| NormalisedLowerBound {
                    bound: lower.bound,
                    inclusive: lower.inclusive,
                }),
                credit: tier.credit,
            })
            .collect(),
        maintenance: policy(sla.maintenance),
        maintenance_notice_ms: sla
            .maintenance_notice
            .map(|d| millis(&format!("sla \"{}\": maintenance_notice", sla.name), d))
            .transpose()?,
        unknown: policy(sla.unknown),
        degraded_weight: sla.degraded_weight,
        locations: sla.locations.clone(),
        quorum: sla.quorum,
        downtime_unit: match sla.downtime_unit {
            DowntimeUnit::Second => None,
            DowntimeUnit::Minute { .. } => Some(NormalisedDowntimeUnit::Minute),
        },
        min_downtime_period_ms: match sla.downtime_unit {
            DowntimeUnit::Minute { min_run } if min_run > 1 => Some(u64::from(min_run) * MINUTE_MS),
            _ => None,
        },
        latency: sla
            .latency
            .map(|objective| {
                let (kind, percent) = match objective.rule {
                    LatencyRule::Percentile(p) => (NormalisedLatencyKind::Percentile, p),
                    LatencyRule::Share(p) => (NormalisedLatencyKind::Share, p),
                };
                let below = format!("sla \"{}\": latency below", sla.name);
                Ok::<_, NormalisedError>(NormalisedLatency {
                    kind,
                    percent,
                    below_ms: millis(&below, objective.below)?,
                })
            })
            .transpose()?,
        latency_credit: sla.latency_credit,
    })
}

/// Milliseconds in a minute, the unit of `min_downtime_period`.
const MINUTE_MS: u64 = 60_000;

fn sla_spec(sla: NormalisedSla) -> Result<SlaSpec, NormalisedError> {
    let what = || format!("sla \"{}\"", sla.name);
    let policy = |p: NormalisedPolicy| match p {
        NormalisedPolicy::Exclude => TimePolicy::Exclude,
        NormalisedPolicy::Up => TimePolicy::Up,
        NormalisedPolicy::Down => TimePolicy::Down,
    };
    if sla.maintenance == NormalisedPolicy::Down {
        return Err(invalid(
            what(),
            "maintenance is \"exclude\" or \"up\", not \"down\"",
        ));
    }
    if !(0.0..=1.0).contains(&sla.degraded_weight)
        || crate::model::Weight::try_from(sla.degraded_weight).is_err()
    {
        return Err(invalid(
            what(),
            "degraded_weight must be from 0.0 to 1.0, in billionths",
        ));
    }
    if sla
        .monthly_fee
        .is_some_and(|fee| !(0.0..=1e12).contains(&fee))
    {
        return Err(invalid(
            what(),
            "monthly_fee must be from 0 to 1000000000000",
        ));
    }
    let downtime_unit = match (sla.downtime_unit, sla.min_downtime_period_ms) {
        (None, None) => DowntimeUnit::Second,
        (None, Some(_)) => {
            return Err(invalid(
                what(),
                "min_downtime_period_ms needs downtime_unit \"minute\"",
            ));
        }
        (Some(NormalisedDowntimeUnit::Minute), None) => DowntimeUnit::Minute { min_run: 1 },
        (Some(NormalisedDowntimeUnit::Minute), Some(ms)) => {
            // One form per value: a single minute is written by leaving the period out.
            let minutes = (ms % MINUTE_MS == 0)
                .then_some(ms / MINUTE_MS)
                .filter(|&m| m > 1 && m <= 31 * 24 * 60)
                .and_then(|m| u32::try_from(m).ok());
            let Some(min_run) = minutes else {
                return Err(invalid(
                    what(),
                    format!(
                        "min_downtime_period_ms {ms} is not a whole number of minutes from 2 to 44640"
                    ),
                ));
            };
            DowntimeUnit::Minute { min_run }
        }
    };
    let mut credits = Vec::with_capacity(sla.credits.len());
    for (i, tier) in sla.credits.into_iter().enumerate() {
        let tier = CreditTier {
            bound: tier.bound,
            inclusive: tier.inclusive,
            lower: tier.lower.map(|lower| LowerBound {
                bound: lower.bound,
                inclusive: lower.inclusive,
            }),
            credit: tier.credit,
        };
        if super::credits::is_empty(&tier) {
            return Err(invalid(
                what(),
                format!("credit tier {} holds no availability", i + 1),
            ));
        }
        credits.push(tier);
    }
    let latency = match sla.latency {
        None => None,
        Some(objective) => {
            if objective.percent.parts_per_billion() == 0 || objective.below_ms == 0 {
                return Err(invalid(
                    what(),
                    "a latency objective needs a percentage above 0% and a bound above 0 ms",
                ));
            }
            let rule = match objective.kind {
                NormalisedLatencyKind::Percentile => LatencyRule::Percentile(objective.percent),
                NormalisedLatencyKind::Share => LatencyRule::Share(objective.percent),
            };
            Some(LatencyObjective {
                rule,
                below: Duration::from_millis(objective.below_ms),
            })
        }
    };
    if sla.latency_credit.is_some() && latency.is_none() {
        return Err(invalid(what(), "latency_credit needs a latency objective"));
    }
    Ok(SlaSpec {
        latency,
        latency_credit: sla.latency_credit,
        client: sla.client,
        probes: sla.probes,
        all: sla.mode == NormalisedMode::All,
        target: sla.target,
        monthly_fee: sla.monthly_fee,
        currency: sla.currency,
        credits,
        maintenance: policy(sla.maintenance),
        maintenance_notice: sla.maintenance_notice_ms.map(Duration::from_millis),
        unknown: policy(sla.unknown),
        degraded_weight: sla.degraded_weight,
        locations: sla.locations,
        quorum: sla.quorum,
        downtime_unit,
        // Where reports are sent is not a term of the agreement's figures (see the module doc).
        report_to: Vec::new(),
        name: sla.name,
    })
}

fn normalise_window(
    index: usize,
    window: &MaintenanceSpec,
) -> Result<NormalisedMaintenance, NormalisedError> {
    let when = match &window.when {
        MaintenanceWhen::Once { start, end } => NormalisedWhen::Once {
            start: *start,
            end: *end,
        },
        MaintenanceWhen::Weekly {
            weekday,
            time,
            duration,
        } => NormalisedWhen::Weekly {
            weekday: weekday.to_monday_one_offset(),
            time: format!("{:02}:{:02}", time.hour(), time.minute()),
            duration_ms: millis(
                &format!("[[maintenance]] #{}: duration", index + 1),
                *duration,
            )?,
        },
    };
    Ok(NormalisedMaintenance {
        probes: window.probes.clone(),
        when,
        reason: window.reason.clone(),
    })
}

fn maintenance_spec(
    index: usize,
    window: NormalisedMaintenance,
) -> Result<MaintenanceSpec, NormalisedError> {
    let what = || format!("[[maintenance]] #{}", index + 1);
    let when = match window.when {
        NormalisedWhen::Once { start, end } => {
            if end <= start {
                return Err(invalid(what(), "end must be after start"));
            }
            MaintenanceWhen::Once { start, end }
        }
        NormalisedWhen::Weekly {
            weekday,
            time,
            duration_ms,
        } => {
            let weekday = Weekday::from_monday_one_offset(weekday)
                .map_err(|_| invalid(what(), format!("weekday {weekday} is not 1 to 7")))?;
            let bad_time = || invalid(what(), format!("time \"{time}\" is not HH:MM"));
            let (hour, minute) = time.split_once(':').ok_or_else(bad_time)?;
            let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
            if !two_digits(hour) || !two_digits(minute) {
                return Err(bad_time());
            }
            let hour: i8 = hour.parse().map_err(|_| bad_time())?;
            let minute: i8 = minute.parse().map_err(|_| bad_time())?;
            let time = jiff::civil::Time::new(hour, minute, 0, 0).map_err(|_| bad_time())?;
            let duration = Duration::from_millis(duration_ms);
            if duration.is_zero() || duration > Duration::from_secs(7 * 24 * 3600) {
                return Err(invalid(
                    what(),
                    "a weekly window lasts more than zero and at most 7 days",
                ));
            }
            MaintenanceWhen::Weekly {
                weekday,
                time,
                duration,
            }
        }
    };
    Ok(MaintenanceSpec {
        probes: window.probes,
        when,
        reason: window.reason,
    })
}

/// A [`Percent`] as its exact decimal text, `"99.95%"`.
mod percent_text {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use crate::model::Percent;

    pub(super) fn serialize<S: Serializer>(
        value: &Percent,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Percent, D::Error> {
        let text = String::deserialize(deserializer)?;
        let value: Percent = text.parse().map_err(D::Error::custom)?;
        // One value, one text: "99.90%" would hash differently from the same terms.
        if value.to_string() != text {
            return Err(D::Error::custom(format!(
                "percentage \"{text}\" is not in its shortest form \"{value}\""
            )));
        }
        Ok(value)
    }
}

/// [`percent_text`] for an optional percentage.
mod option_percent_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::model::Percent;

    pub(super) fn serialize<S: Serializer>(
        value: &Option<Percent>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => super::percent_text::serialize(value, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Percent>, D::Error> {
        #[derive(Deserialize)]
        struct Text(#[serde(with = "super::percent_text")] Percent);
        Ok(Option::<Text>::deserialize(deserializer)?.map(|Text(p)| p))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A main file with a Berlin month, two SLAs (credit tiers, notice, policies, a fee) and
    /// once and weekly windows, and an `[evidence]` section.
    pub(crate) const RICH_MAIN: &str = r#"
[daemon]
ledger = "ledger"
timezone = "Europe/Berlin"

[evidence]
signing_key = "keys/upledger"
origin = "status.example.com/upledger"

[[channel]]
name = "ops"
kind = "webhook"
url = "https://hooks.example.com/hidden-hook"
secret = "hidden-webhook-secret"

[[sla]]
name = "acme"
client = "ACME Corp"
probes = ["web", "db-*"]
target = "99.95%"
monthly_fee = 2000.5
currency = "EUR"
credits = [ { below = "99.95%", credit = "10%" },
            { at_or_below = "99.0%", credit = "25.5%" } ]
maintenance = "up"
maintenance_notice = "72h"
unknown = "down"
degraded_weight = 0.3
report_to = ["ops"]

[[sla]]
name = "either"
probes = ["*"]
mode = "any"
target = "99%"

[[maintenance]]
probes = ["web"]
start = "2026-10-03T02:00:00Z"
duration = "2h"
reason = "database upgrade"

[[maintenance]]
probes = ["*"]
weekly = "Sun 03:00"
duration = "30m"
reason = "weekly patch window"
"#;

    /// Three probes of three kinds, with what must never leave the monitor in them.
    pub(crate) const RICH_PROBES: &str = r#"
[[probe]]
name = "web"
kind = "http"
url = "https://hidden-host.example.com/health"
headers = { Authorization = "Bearer hidden-token" }
body_contains = "hidden-body"
interval = "30s"
timeout = "5s"
failure_threshold = 3
degraded_after = "800ms"
target = "99.9%"

[[probe]]
name = "db-port"
kind = "tcp"
address = "127.0.0.1:5432"
send = "hidden-send"
interval = "1m"
timeout = "10s"
stale_after = "3m"
success_threshold = 4
target = "99.5%"

[[probe]]
name = "dns-apex"
kind = "dns"
query = "hidden-zone.example.com"
record = "A"
interval = "45s"
timeout = "5s"
enabled = false
"#;

    /// The rich configuration in `dir`.
    pub(crate) fn rich_config(dir: &std::path::Path) -> Config {
        std::fs::create_dir_all(dir.join("probes.d")).expect("a probes folder");
        std::fs::write(dir.join("upledger.toml"), RICH_MAIN).expect("the main file");
        std::fs::write(dir.join("probes.d/p.toml"), RICH_PROBES).expect("the probe file");
        crate::config::load(&dir.join("upledger.toml")).expect("a valid configuration")
    }

    fn rich() -> (tempfile::TempDir, NormalisedConfig) {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let config = rich_config(dir.path());
        let normalised = NormalisedConfig::from_config(&config).expect("whole milliseconds");
        (dir, normalised)
    }

    #[test]
    fn the_normalised_form_reads_back_as_itself() {
        let (_dir, normalised) = rich();
        let json = normalised.to_json();
        let back = NormalisedConfig::from_json(&json).expect("its own form");
        assert_eq!(back, normalised);
        assert_eq!(back.to_json(), json, "canonical: one form");
        assert_eq!(back.sha256(), normalised.sha256());
        // And through a Config again: nothing lost, nothing added.
        let config = back.clone().into_config().expect("a configuration");
        let again = NormalisedConfig::from_config(&config).expect("whole milliseconds");
        assert_eq!(again, back);
    }

    #[test]
    fn the_normalised_form_holds_the_terms_and_nothing_secret() {
        let (_dir, normalised) = rich();
        let text = String::from_utf8(normalised.to_json()).expect("UTF-8");
        for hidden in [
            "hidden",
            "hooks.example.com",
            "127.0.0.1",
            "keys/upledger",
            // A channel name, also as an SLA's `report_to`: delivery is not a term.
            "ops",
            "report_to",
        ] {
            assert!(!text.contains(hidden), "{hidden} in {text}");
        }
        assert!(text.starts_with(r#"{"version":1,"timezone":"Europe/Berlin","probes":[{"name":"web","kind":"http","enabled":true,"interval_ms":30000,"timeout_ms":5000,"stale_after_ms":60000,"failure_threshold":3,"success_threshold":2,"degraded_after_ms":800,"target":"99.9%"}"#), "{text}");
        for part in [
            r#"{"name":"dns-apex","kind":"dns","enabled":false,"#,
            r#""credits":[{"bound":"99.95%","inclusive":false,"credit":"10%"},{"bound":"99%","inclusive":true,"credit":"25.5%"}]"#,
            r#""monthly_fee":2000.5,"currency":"EUR""#,
            r#""maintenance":"up","maintenance_notice_ms":259200000,"unknown":"down","degraded_weight":0.3"#,
            r#""when":{"once":{"start":"2026-10-03T02:00:00Z","end":"2026-10-03T04:00:00Z"}}"#,
            r#""when":{"weekly":{"weekday":7,"time":"03:00","duration_ms":1800000}}"#,
            r#""evidence":{"origin":"status.example.com/upledger","hour_ms":3600000}}"#,
        ] {
            assert!(text.contains(part), "{part} not in {text}");
        }
        // Any change of terms changes the hash.
        let mut changed = normalised.clone();
        changed.slas[0].credits[1].credit = "25.6%".parse().expect("a percentage");
        assert_ne!(changed.sha256(), normalised.sha256());
        assert_eq!(
            hex(&normalised.sha256()).len(),
            64,
            "a SHA-256 of the canonical bytes"
        );
        let direct = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
        assert_eq!(normalised.sha256().as_slice(), direct.as_ref());
    }

    use crate::model::hex;

    #[test]
    fn a_rebuilt_configuration_withholds_every_check() {
        let (_dir, normalised) = rich();
        let config = normalised.into_config().expect("a configuration");
        let kinds: Vec<_> = config
            .probes
            .iter()
            .map(|p| match p.check {
                CheckSpec::Withheld(kind) => Some(kind),
                _ => None,
            })
            .collect();
        assert_eq!(
            kinds,
            [
                Some(ProbeKind::Http),
                Some(ProbeKind::Tcp),
                Some(ProbeKind::Dns)
            ]
        );
        assert!(config.channels.is_empty());
        assert_eq!(config.evidence.signing_key, None);
        assert_eq!(config.daemon.timezone_name, "Europe/Berlin");
        assert_eq!(
            config.probe("db-port").map(|p| p.success_threshold),
            Some(4)
        );
    }

    #[test]
    fn foreign_or_malformed_forms_are_refused() {
        let (_dir, normalised) = rich();
        let text = String::from_utf8(normalised.to_json()).expect("UTF-8");
        let refused = |text: &str| {
            NormalisedConfig::from_json(text.as_bytes())
                .and_then(NormalisedConfig::into_config)
                .expect_err("refused")
                .to_string()
        };
        let newer = text.replacen(r#""version":1"#, r#""version":2"#, 1);
        assert!(refused(&newer).contains("version 2 is not supported"));
        let extra = text.replacen(r#""timezone""#, r#""url":"x","timezone""#, 1);
        assert!(
            refused(&extra).contains("unknown field `url`"),
            "{}",
            refused(&extra)
        );
        let padded = text.replacen(r#""target":"99.9%""#, r#""target":"99.90%""#, 1);
        assert!(refused(&padded).contains("shortest form"));
        let zone = text.replacen("Europe/Berlin", "Europe/Nowhere", 1);
        assert!(refused(&zone).contains("unknown time zone"));
        let slow = text.replacen(r#""timeout_ms":5000"#, r#""timeout_ms":30000"#, 1);
        assert!(refused(&slow).contains("shorter than interval"));
        let weekday = text.replacen(r#""weekday":7"#, r#""weekday":8"#, 1);
        assert!(refused(&weekday).contains("weekday 8"));
        let hour = text.replacen(r#""hour_ms":3600000"#, r#""hour_ms":7000"#, 1);
        assert!(refused(&hour).contains("divide 24h"));
        let twice = text.replacen(r#""name":"db-port""#, r#""name":"web""#, 1);
        assert!(refused(&twice).contains("named twice"));
    }

    #[test]
    fn minutes_and_closed_bands_normalise_and_read_back_and_defaults_stay_absent() {
        let (_dir, normalised) = rich();
        let text = String::from_utf8(normalised.to_json()).expect("UTF-8");
        // Seconds and open tiers (the defaults) leave no trace: older bundles keep their hash.
        for absent in ["downtime_unit", "min_downtime_period_ms", "lower"] {
            assert!(!text.contains(absent), "{absent} in {text}");
        }
        let mut minutes = normalised.clone();
        minutes.slas[0].downtime_unit = Some(NormalisedDowntimeUnit::Minute);
        minutes.slas[0].min_downtime_period_ms = Some(300_000);
        minutes.slas[0].credits[0].lower = Some(NormalisedLowerBound {
            bound: "99%".parse().expect("a percentage"),
            inclusive: false,
        });
        let json = String::from_utf8(minutes.to_json()).expect("UTF-8");
        for part in [
            r#""credits":[{"bound":"99.95%","inclusive":false,"lower":{"bound":"99%","inclusive":false},"credit":"10%"}"#,
            r#""downtime_unit":"minute","min_downtime_period_ms":300000"#,
        ] {
            assert!(json.contains(part), "{part} not in {json}");
        }
        assert_ne!(minutes.sha256(), normalised.sha256());
        let config = NormalisedConfig::from_json(json.as_bytes())
            .and_then(NormalisedConfig::into_config)
            .expect("a configuration");
        assert_eq!(
            config.slas[0].downtime_unit,
            DowntimeUnit::Minute { min_run: 5 }
        );
        assert_eq!(
            config.slas[0].credits[0].lower,
            Some(LowerBound {
                bound: "99%".parse().expect("a percentage"),
                inclusive: false
            })
        );
        let again = NormalisedConfig::from_config(&config).expect("whole milliseconds");
        assert_eq!(again, minutes, "read back as itself");

        let refused = |json: &str| {
            NormalisedConfig::from_json(json.as_bytes())
                .and_then(NormalisedConfig::into_config)
                .expect_err("refused")
                .to_string()
        };
        let seconds = json.replacen(
            r#""downtime_unit":"minute""#,
            r#""downtime_unit":"second""#,
            1,
        );
        assert!(
            refused(&seconds).contains("unknown variant `second`"),
            "{}",
            refused(&seconds)
        );
        let one = json.replacen("300000", "60000", 1);
        assert!(refused(&one).contains("not a whole number of minutes from 2"));
        let odd = json.replacen("300000", "90000", 1);
        assert!(refused(&odd).contains("not a whole number of minutes"));
        let orphan = json.replacen(r#""downtime_unit":"minute","#, "", 1);
        assert!(refused(&orphan).contains("needs downtime_unit"));
        let empty = json.replacen(
            r#""lower":{"bound":"99%""#,
            r#""lower":{"bound":"99.96%""#,
            1,
        );
        assert!(refused(&empty).contains("credit tier 1 holds no availability"));
    }

    #[test]
    fn a_latency_objective_normalises_reads_back_and_is_absent_by_default() {
        let (_dir, normalised) = rich();
        let text = String::from_utf8(normalised.to_json()).expect("UTF-8");
        assert!(!text.contains("latency"), "{text}");
        let mut objective = normalised.clone();
        objective.slas[0].latency = Some(NormalisedLatency {
            kind: NormalisedLatencyKind::Share,
            percent: "99.5%".parse().expect("a percentage"),
            below_ms: 500,
        });
        objective.slas[0].latency_credit = Some("5%".parse().expect("a percentage"));
        let json = String::from_utf8(objective.to_json()).expect("UTF-8");
        let part =
            r#""latency":{"kind":"share","percent":"99.5%","below_ms":500},"latency_credit":"5%""#;
        assert!(json.contains(part), "{part} not in {json}");
        assert_ne!(objective.sha256(), normalised.sha256());
        let config = NormalisedConfig::from_json(json.as_bytes())
            .and_then(NormalisedConfig::into_config)
            .expect("a configuration");
        assert_eq!(
            config.slas[0].latency,
            Some(LatencyObjective {
                rule: LatencyRule::Share("99.5%".parse().expect("a percentage")),
                below: Duration::from_millis(500),
            })
        );
        let again = NormalisedConfig::from_config(&config).expect("whole milliseconds");
        assert_eq!(again, objective, "read back as itself");
        let refused = |json: &str| {
            NormalisedConfig::from_json(json.as_bytes())
                .and_then(NormalisedConfig::into_config)
                .expect_err("refused")
                .to_string()
        };
        let orphan = json.replacen(
            r#""latency":{"kind":"share","percent":"99.5%","below_ms":500},"#,
            "",
            1,
        );
        assert!(refused(&orphan).contains("latency_credit needs a latency objective"));
        let zero = json.replacen(r#""below_ms":500"#, r#""below_ms":0"#, 1);
        assert!(refused(&zero).contains("a bound above 0 ms"));
        let long = json.replacen(r#""latency_credit":"5%""#, r#""latency_credit":"5.0%""#, 1);
        assert!(refused(&long).contains("not in its shortest form"));
    }

    #[test]
    fn a_duration_below_a_millisecond_has_no_normalised_form() {
        assert_eq!(millis("x", Duration::from_millis(1_500)).ok(), Some(1_500));
        let error = millis(
            "probe \"web\": degraded_after",
            Duration::from_micros(800_500),
        )
        .expect_err("sub-millisecond");
        assert!(error.to_string().contains("degraded_after"), "{error}");
    }
}
