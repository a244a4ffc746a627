//! Validated configuration: the typed values every other layer reads.
//!
//! Nothing here is raw text any more: durations are [`Duration`]s, targets are exact
//! [`Percent`]s, regexes are compiled. Defaults were applied by [`crate::config::load`].

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use jiff::{Timestamp, tz::TimeZone};
use regex::Regex;
use url::Url;

use crate::model::{LocationName, NameMap, Percent, ProbeKind, ProbeName};

/// The whole validated configuration: main file plus every probe file.
#[derive(Debug, Clone)]
pub struct Config {
    /// The main config file this was loaded from.
    pub main_file: PathBuf,
    /// `[daemon]` settings.
    pub daemon: DaemonSpec,
    /// Every probe of every `probes.d/*.toml`, in file then declaration order.
    pub probes: Vec<ProbeSpec>,
    /// `[[channel]]` alert destinations.
    pub channels: Vec<ChannelSpec>,
    /// `[[sla]]` agreements.
    pub slas: Vec<SlaSpec>,
    /// `[[maintenance]]` windows.
    pub maintenance: Vec<MaintenanceSpec>,
    /// `[evidence]` settings: the Merkle log's name, its signing key (SPEC §8).
    pub evidence: EvidenceSpec,
    /// `[witness]`: the logs this daemon cosigns for (SPEC §9), when it witnesses any.
    pub witness: Option<WitnessSpec>,
    /// `[replication]`: this daemon's part in a fleet (SPEC §9), when it has one.
    pub replication: Option<ReplicationSpec>,
    /// `[page]`: how the public status page presents the vendor.
    pub page: PageSpec,
    /// What the configuration allows but probably does not mean (a credit table with a gap),
    /// each located like an error; they never stop a load.
    warnings: Vec<super::Diagnostic>,
    /// Position of each probe in `probes`, by name: the daemon looks a probe up for every
    /// result, and a linear search over 10,000 probes would cost more than the check.
    probe_index: NameMap<usize>,
}

impl Config {
    /// Assembles a configuration and indexes its probes by name.
    pub fn new(
        main_file: PathBuf,
        daemon: DaemonSpec,
        probes: Vec<ProbeSpec>,
        channels: Vec<ChannelSpec>,
        slas: Vec<SlaSpec>,
        maintenance: Vec<MaintenanceSpec>,
        evidence: EvidenceSpec,
    ) -> Self {
        let probe_index = probes
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.clone(), i))
            .collect();
        Config {
            main_file,
            daemon,
            probes,
            channels,
            slas,
            maintenance,
            evidence,
            witness: None,
            replication: None,
            page: PageSpec::default(),
            warnings: Vec::new(),
            probe_index,
        }
    }

    /// The configuration with `[witness]` set.
    pub fn with_witness(mut self, witness: Option<WitnessSpec>) -> Self {
        self.witness = witness;
        self
    }

    /// The configuration with `[page]` set.
    pub fn with_page(mut self, page: PageSpec) -> Self {
        self.page = page;
        self
    }

    /// The configuration with its load warnings.
    pub fn with_warnings(mut self, warnings: Vec<super::Diagnostic>) -> Self {
        self.warnings = warnings;
        self
    }

    /// What `validate` warns about and the daemon logs at start and reload, in file order.
    pub fn warnings(&self) -> &[super::Diagnostic] {
        &self.warnings
    }

    /// The configuration with `[replication]` set.
    pub fn with_replication(mut self, replication: Option<ReplicationSpec>) -> Self {
        self.replication = replication;
        self
    }

    /// Whether this daemon is a coordinator: it runs no probe that names locations, and
    /// takes their results from the agents instead.
    pub fn is_coordinator(&self) -> bool {
        self.replication
            .as_ref()
            .is_some_and(|r| r.role == ReplicationRole::Coordinator)
    }

    /// Whether this daemon is an agent: it publishes its results (and checkpoints).
    pub fn is_agent(&self) -> bool {
        self.replication
            .as_ref()
            .is_some_and(|r| r.role == ReplicationRole::Agent)
    }

    /// Whether this daemon checks `probe` itself: a coordinator leaves probes with
    /// `locations` to its agents; an agent runs a probe unless it names other locations.
    pub fn runs_here(&self, probe: &ProbeSpec) -> bool {
        if probe.locations.is_empty() {
            return true;
        }
        !self.is_coordinator() && probe.locations.contains(&self.daemon.location)
    }

    /// The probe called `name`, if configured.
    pub fn probe(&self, name: &str) -> Option<&ProbeSpec> {
        let name = ProbeName::new(name).ok()?;
        self.probe_by_name(&name)
    }

    /// The probe called `name`, if configured (no allocation).
    pub fn probe_by_name(&self, name: &ProbeName) -> Option<&ProbeSpec> {
        self.probe_index.get(name).and_then(|&i| self.probes.get(i))
    }
}

/// `[daemon]`: where the daemon keeps its state and how it runs.
#[derive(Debug, Clone)]
pub struct DaemonSpec {
    /// The sled ledger directory.
    pub ledger: PathBuf,
    /// Where this daemon checks from (SPEC §9; default: the host name), recorded with every
    /// result.
    pub location: LocationName,
    /// The folder of probe files.
    pub probes_dir: PathBuf,
    /// The read-only HTTP listener.
    pub listen: SocketAddr,
    /// The admin/CLI unix socket.
    pub socket: PathBuf,
    /// The IANA name of [`DaemonSpec::timezone`], as configured.
    pub timezone_name: String,
    /// Month boundaries for reports.
    pub timezone: TimeZone,
    /// Checks in flight at once.
    pub max_concurrency: usize,
    /// How long raw results are kept.
    pub retention: Duration,
    /// The probe that checks the monitor's own connectivity.
    pub sentinel: Option<ProbeName>,
    /// Whether the public listener may show URLs, addresses and error details.
    pub show_details: bool,
    /// How long an undelivered alert is retried before it is marked failed.
    pub alert_retry_for: Duration,
    /// Multiwindow burn-rate alert rules (SRE workbook style).
    pub burn_rates: Vec<BurnRule>,
    /// A wall-clock jump this much beyond the monotonic clock is recorded as a clock step.
    pub clock_step_threshold: Duration,
    /// The group the admin socket belongs to: its members may run the *read* commands
    /// (status, history, reports, export, alerts list) through it.
    pub socket_group: Option<GroupSpec>,
    /// A group whose members may also run the *admin* commands (exclude, import, alerts
    /// test); root and the daemon's own user always may.
    pub admin_group: Option<GroupSpec>,
}

/// `[evidence]`: how the ledger's Merkle log is named, signed and cut into leaves (SPEC §8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceSpec {
    /// The Ed25519 key (OpenSSH format) checkpoints and reports are signed with; without
    /// one the log is kept and its checkpoints are unsigned.
    pub signing_key: Option<PathBuf>,
    /// The log's name, the first line of every checkpoint (`upledger/<hostname>` by default).
    pub origin: String,
    /// The length of a leaf's "hour": one hour, except in tests that need many leaves fast.
    /// Always at least a second and a whole divisor of a day, so leaves tile UTC days.
    pub hour: Duration,
    /// Witnesses every new checkpoint is sent to for cosigning (SPEC §9).
    pub witnesses: Vec<WitnessTarget>,
}

/// A witness a log sends its checkpoints to (`[evidence] witnesses = [{ url, key }]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessTarget {
    /// Its submission prefix: `add-checkpoint` is posted to `<url>/add-checkpoint`.
    pub url: url::Url,
    /// Its public key, an OpenSSH `ssh-ed25519 AAAA…` line: cosignatures by other keys are
    /// not stored.
    pub key: String,
}

/// `[witness]`: this daemon cosigns the checkpoints of other logs that extend what it saw
/// before (C2SP tlog-witness; SPEC §9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessSpec {
    /// The name on its cosignature lines (default: `[evidence] origin`).
    pub name: String,
    /// The Ed25519 key it cosigns with (default: `[evidence] signing_key`).
    pub signing_key: PathBuf,
    /// A log that sends no checkpoint for this long raises `log_silent` (default 2 h).
    pub silence: Duration,
    /// The logs it witnesses.
    pub logs: Vec<WitnessedLogSpec>,
}

/// One log a witness accepts checkpoints from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessedLogSpec {
    /// The log's origin line.
    pub origin: String,
    /// Its public key, an OpenSSH `ssh-ed25519 AAAA…` line.
    pub key: String,
}

/// A unix group named in the configuration, resolved when it was loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSpec {
    /// The name as configured.
    pub name: String,
    /// Its id on this host.
    pub gid: u32,
}

/// Where in the configuration a probe was declared, for messages that point back at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The probe file.
    pub file: PathBuf,
    /// 1-based line of the probe's `[[probe]]` header.
    pub line: usize,
}

/// One probe, with every default applied.
#[derive(Debug, Clone)]
pub struct ProbeSpec {
    /// Unique name.
    pub name: ProbeName,
    /// Where it was declared.
    pub origin: Origin,
    /// Time between check starts.
    pub interval: Duration,
    /// Longest a check may take; always shorter than `interval`.
    pub timeout: Duration,
    /// Consecutive failures before the probe is down (back-dated to the first).
    pub failure_threshold: u32,
    /// Consecutive successes before an incident is resolved.
    pub success_threshold: u32,
    /// How long one result stands for the probe (SPEC §3); at least `interval`.
    pub stale_after: Duration,
    /// Monthly availability target.
    pub target: Percent,
    /// Checks slower than this are degraded.
    pub degraded_after: Option<Duration>,
    /// Alert channels, by name; each exists in [`Config::channels`]. Unset (`None`): every
    /// channel; `channels = []` silences the probe.
    pub channels: Option<Vec<String>>,
    /// While down, repeat the `down` alert this often (a reminder); unset: never.
    pub remind_every: Option<Duration>,
    /// Free-form labels.
    pub tags: Vec<String>,
    /// Free-form description.
    pub description: Option<String>,
    /// The name clients read on the status page instead of `name` (one line, 1–100
    /// characters); `None`: the page shows `name`.
    pub display_name: Option<String>,
    /// The heading the status page lists the probe under (one line, 1–100 characters);
    /// `None`: the page's default heading.
    pub group: Option<String>,
    /// Disabled probes are validated but never scheduled.
    pub enabled: bool,
    /// Hidden from the public listener when false.
    pub public: bool,
    /// The agents' locations whose results decide this probe's state (SPEC §9); empty: the
    /// probe is checked here alone.
    pub locations: Vec<LocationName>,
    /// How many of `locations` must see the probe down for it to be down (1 when
    /// `locations` is empty).
    pub quorum: usize,
    /// What the check does.
    pub check: CheckSpec,
}

impl ProbeSpec {
    /// The kind of check.
    pub fn kind(&self) -> ProbeKind {
        self.check.kind()
    }

    /// What a client reads for this probe: its `display_name`, else its name.
    pub fn shown_name(&self) -> &str {
        self.display_name.as_deref().unwrap_or(self.name.as_str())
    }
}

/// The kind-specific part of a probe.
#[derive(Debug, Clone)]
pub enum CheckSpec {
    /// `kind = "http"`.
    Http(HttpSpec),
    /// `kind = "tcp"`.
    Tcp(TcpSpec),
    /// `kind = "dns"`.
    Dns(DnsSpec),
    /// A probe read from evidence (a normalised configuration): its terms only — name,
    /// timing, thresholds, target — and the kind it was. It is never checked: what it
    /// checked (URL, address, query, headers) stays with the monitor.
    Withheld(ProbeKind),
}

impl CheckSpec {
    /// The kind of check.
    pub fn kind(&self) -> ProbeKind {
        match self {
            CheckSpec::Http(_) => ProbeKind::Http,
            CheckSpec::Tcp(_) => ProbeKind::Tcp,
            CheckSpec::Dns(_) => ProbeKind::Dns,
            CheckSpec::Withheld(kind) => *kind,
        }
    }
}

/// One entry of `expect_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusMatch {
    /// An exact code like `301`.
    Code(u16),
    /// A class like `"2xx"`, held as its first digit.
    Class(u8),
}

impl StatusMatch {
    /// Whether `status` satisfies this entry.
    pub fn matches(self, status: u16) -> bool {
        match self {
            StatusMatch::Code(code) => code == status,
            StatusMatch::Class(class) => status / 100 == u16::from(class),
        }
    }
}

/// An HTTP(S) check.
#[derive(Debug, Clone)]
pub struct HttpSpec {
    /// `http://` or `https://` URL.
    pub url: Url,
    /// Request method, uppercase (`GET`, `POST`, any token).
    pub method: String,
    /// Request headers, `${VAR}` already expanded.
    pub headers: Vec<(String, String)>,
    /// Request body.
    pub body: Option<String>,
    /// Acceptable statuses; default `["2xx"]`.
    pub expect_status: Vec<StatusMatch>,
    /// The body must contain this text.
    pub body_contains: Option<String>,
    /// The body must not contain this text.
    pub body_not_contains: Option<String>,
    /// The body must match this regex.
    pub body_regex: Option<Regex>,
    /// Follow redirects (at most `max_redirects`) or judge the redirect response itself.
    pub follow_redirects: bool,
    /// Most redirects a check follows; one more fails it (`protocol`). Default 10.
    pub max_redirects: u32,
    /// Verify the certificate chain and host name.
    pub tls_verify: bool,
    /// Flag certificates expiring sooner than this.
    pub cert_expiry_warn: Duration,
    /// Never read more of the body than this; assertions see this prefix.
    pub max_body_bytes: u64,
    /// Resolve the host through this DNS server instead of the system resolver.
    pub dns_server: Option<SocketAddr>,
    /// Keep the connection open between checks (`reuse_connection = true`): cheaper, but a
    /// check then no longer measures connecting, and misses a listener that stopped
    /// accepting new connections while old ones still work.
    pub reuse_connection: bool,
}

/// A TCP check.
#[derive(Debug, Clone)]
pub struct TcpSpec {
    /// Host name or IP literal (without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Do a TLS handshake after connecting.
    pub tls: bool,
    /// Verify the certificate when `tls` is set.
    pub tls_verify: bool,
    /// Flag certificates expiring sooner than this.
    pub cert_expiry_warn: Duration,
    /// Bytes to send after connecting (and the handshake).
    pub send: Option<String>,
    /// Text that must appear in the first bytes read.
    pub expect: Option<String>,
    /// Resolve the host through this DNS server instead of the system resolver.
    pub dns_server: Option<SocketAddr>,
}

/// DNS record types a probe may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// IPv4 address.
    A,
    /// IPv6 address.
    Aaaa,
    /// Canonical name.
    Cname,
    /// Mail exchanger.
    Mx,
    /// Text.
    Txt,
    /// Name server.
    Ns,
    /// Start of authority.
    Soa,
    /// Service locator.
    Srv,
    /// Certification authority authorization.
    Caa,
    /// Pointer (reverse lookup).
    Ptr,
}

impl RecordKind {
    /// Every supported type with its config spelling.
    pub const ALL: [(RecordKind, &'static str); 10] = [
        (RecordKind::A, "A"),
        (RecordKind::Aaaa, "AAAA"),
        (RecordKind::Cname, "CNAME"),
        (RecordKind::Mx, "MX"),
        (RecordKind::Txt, "TXT"),
        (RecordKind::Ns, "NS"),
        (RecordKind::Soa, "SOA"),
        (RecordKind::Srv, "SRV"),
        (RecordKind::Caa, "CAA"),
        (RecordKind::Ptr, "PTR"),
    ];
}

/// DNS response codes a probe may require.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rcode {
    /// Success.
    NoError,
    /// The name does not exist.
    NxDomain,
    /// The server failed.
    ServFail,
    /// The server refused.
    Refused,
}

impl Rcode {
    /// Every supported code with its config spelling.
    pub const ALL: [(Rcode, &'static str); 4] = [
        (Rcode::NoError, "NOERROR"),
        (Rcode::NxDomain, "NXDOMAIN"),
        (Rcode::ServFail, "SERVFAIL"),
        (Rcode::Refused, "REFUSED"),
    ];

    /// The conventional upper-case name.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(code, _)| *code == self)
            .map_or("?", |(_, name)| name)
    }
}

/// Transport for DNS queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsProtocol {
    /// UDP (the default).
    Udp,
    /// TCP.
    Tcp,
}

/// A DNS check.
#[derive(Debug, Clone)]
pub struct DnsSpec {
    /// The name to query.
    pub query: String,
    /// The record type.
    pub record: RecordKind,
    /// The server to ask; the system resolver's first server when absent.
    pub server: Option<SocketAddr>,
    /// UDP or TCP.
    pub protocol: DnsProtocol,
    /// Every listed value must be in the answer set.
    pub expect: Vec<String>,
    /// The response code the check requires.
    pub expect_rcode: Rcode,
}

/// Event names a channel may subscribe to (SPEC §6).
pub const EVENT_NAMES: [&str; 9] = [
    "down",
    "up",
    "degraded",
    "cert_expiring",
    "budget",
    "burn_rate",
    "monitor_offline",
    "log_fork",
    "log_silent",
];

/// Where alerts go.
#[derive(Debug, Clone)]
pub struct ChannelSpec {
    /// Unique channel name, referenced by probes.
    pub name: String,
    /// Kind and destination.
    pub kind: ChannelKind,
    /// Events this channel receives.
    pub events: Vec<String>,
}

/// The kind-specific part of a channel.
#[derive(Debug, Clone)]
pub enum ChannelKind {
    /// POST JSON to a URL.
    Webhook {
        /// Destination.
        url: Url,
        /// HMAC-SHA256 key, read from `secret` or `secret_file`.
        secret: Option<String>,
        /// `generic`, `slack` or `discord`.
        format: String,
        /// Delivery timeout.
        timeout: Duration,
    },
    /// A desktop notification over the session D-Bus.
    Desktop,
}

/// A burn-rate alert rule: fire when the error budget burns at least `factor` times the
/// sustainable rate over both the `long` and the `short` window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurnRule {
    /// The long window (how much budget is at stake).
    pub long: Duration,
    /// The short window (that it is still burning now).
    pub short: Duration,
    /// Multiple of the sustainable burn rate.
    pub factor: f64,
}

/// The SRE workbook's page-worthy pair: 14.4× over 1 h and 5 min (2 % of a 30-day budget in an
/// hour), 6× over 6 h and 30 min (5 % in six hours).
pub const DEFAULT_BURN_RULES: [BurnRule; 2] = [
    BurnRule {
        long: Duration::from_secs(3600),
        short: Duration::from_secs(300),
        factor: 14.4,
    },
    BurnRule {
        long: Duration::from_secs(6 * 3600),
        short: Duration::from_secs(1800),
        factor: 6.0,
    },
];

/// A credit band of an SLA: availability up to an upper bound and, for a closed band
/// (SPEC §10), from a lower bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditTier {
    /// Upper availability bound.
    pub bound: Percent,
    /// True for `at_or_below` (≤), false for `below` (<).
    pub inclusive: bool,
    /// The lower bound of a closed band (`above` / `at_or_above`); `None`: the band reaches
    /// down to 0 %, and a lower availability matches it too.
    pub lower: Option<LowerBound>,
    /// Credit as a percentage of the monthly fee.
    pub credit: Percent,
}

/// The lower bound of a closed credit band.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LowerBound {
    /// The availability bound.
    pub bound: Percent,
    /// True for `at_or_above` (≥), false for `above` (>).
    pub inclusive: bool,
}

/// How an SLA counts downtime (SPEC §10: `downtime_unit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DowntimeUnit {
    /// Every down second counts (the default).
    #[default]
    Second,
    /// Only whole clock minutes entirely down count, and only in runs of at least
    /// `min_run` consecutive such minutes (`min_downtime_period`, in minutes; at least 1).
    Minute {
        /// The shortest run of down minutes that counts.
        min_run: u32,
    },
}

/// What a policy counts a kind of time as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimePolicy {
    /// Left out of the denominator.
    Exclude,
    /// Counted as available.
    Up,
    /// Counted as downtime.
    Down,
}

/// An `[[sla]]` agreement with a client.
#[derive(Debug, Clone)]
pub struct SlaSpec {
    /// Unique name.
    pub name: String,
    /// Client name, for reports.
    pub client: Option<String>,
    /// Probe name globs.
    pub probes: Vec<String>,
    /// True for `mode = "all"`, false for `"any"`.
    pub all: bool,
    /// Availability target.
    pub target: Percent,
    /// Monthly fee, for credit amounts.
    pub monthly_fee: Option<f64>,
    /// Currency of the fee.
    pub currency: Option<String>,
    /// Credit bands.
    pub credits: Vec<CreditTier>,
    /// `exclude` or `up`.
    pub maintenance: TimePolicy,
    /// Windows need this much notice to count.
    pub maintenance_notice: Option<Duration>,
    /// `exclude`, `up` or `down`.
    pub unknown: TimePolicy,
    /// Fraction of degraded time counted as down, in [0, 1].
    pub degraded_weight: f64,
    /// The locations whose results count for this agreement (SPEC §9); `None`: each
    /// probe's own `locations`.
    pub locations: Option<Vec<LocationName>>,
    /// The quorum for this agreement; `None`: each probe's own.
    pub quorum: Option<usize>,
    /// Seconds (default) or whole minutes, with the shortest run that counts.
    pub downtime_unit: DowntimeUnit,
    /// A response-time objective (SPEC §10), judged on the month's successful checks.
    pub latency: Option<LatencyObjective>,
    /// Credit added when the latency objective is missed.
    pub latency_credit: Option<Percent>,
    /// Channels (`[[channel]]` names, each declared) that get the `report` event of every
    /// month once it closes (SPEC §10). Delivery only: it changes no figure, so it is not in
    /// the normalised configuration.
    pub report_to: Vec<String>,
}

/// An SLA's response-time objective (SPEC §10: `latency = { percentile, below }` or
/// `{ share, below }`). Both forms say the same thing from two sides — "the p-th percentile is
/// under the bound" holds exactly when "at least p % of the checks were under it" does — and
/// are reported in the form the contract was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatencyObjective {
    /// Which form, with its percentage.
    pub rule: LatencyRule,
    /// The bound; a check exactly at it is not under it.
    pub below: Duration,
}

/// The two forms of a latency objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatencyRule {
    /// Met when the month's p-th percentile (nearest rank) of successful checks is under the
    /// bound.
    Percentile(Percent),
    /// Met when at least this share of the month's successful checks was under the bound.
    Share(Percent),
}

impl LatencyRule {
    /// The percentage either form names.
    pub fn percent(self) -> Percent {
        match self {
            LatencyRule::Percentile(p) | LatencyRule::Share(p) => p,
        }
    }
}

/// When a maintenance window happens.
#[derive(Debug, Clone)]
pub enum MaintenanceWhen {
    /// Once, from `start` to `end`.
    Once {
        /// Start.
        start: Timestamp,
        /// End (exclusive).
        end: Timestamp,
    },
    /// Every week at a local time in the daemon's timezone.
    Weekly {
        /// Day of the week.
        weekday: jiff::civil::Weekday,
        /// Local time of day.
        time: jiff::civil::Time,
        /// Length.
        duration: Duration,
    },
}

/// A `[[maintenance]]` window.
#[derive(Debug, Clone)]
pub struct MaintenanceSpec {
    /// Probe name globs it covers.
    pub probes: Vec<String>,
    /// When.
    pub when: MaintenanceWhen,
    /// Why, for reports.
    pub reason: String,
}

impl MaintenanceSpec {
    /// A stable identity for the window (what it covers and when, not why), under which the
    /// ledger records when the daemon first saw it: an SLA may only honour windows announced
    /// long enough before they start (SPEC §3). Editing the reason keeps the identity;
    /// moving the window makes it a new one.
    pub fn identity(&self) -> String {
        let when = match &self.when {
            MaintenanceWhen::Once { start, end } => format!("once {start} {end}"),
            MaintenanceWhen::Weekly {
                weekday,
                time,
                duration,
            } => format!("weekly {weekday:?} {time} {}s", duration.as_secs()),
        };
        format!("{when} [{}]", self.probes.join(","))
    }
}

/// Resolves `path` against the folder of the file it was written in (SPEC §1).
pub fn relative_to(file: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_owned()
    } else {
        file.parent().unwrap_or(Path::new("")).join(path)
    }
}

/// `[replication]` (SPEC §9): how results travel between agents and coordinators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationSpec {
    /// The NATS server(s), `nats://host:4222` (several comma-separated).
    pub nats: String,
    /// The JetStream stream results and checkpoints go to.
    pub stream: String,
    /// Agent (publishes) or coordinator (consumes).
    pub role: ReplicationRole,
    /// A NATS credentials file (JWT and NKey seed), if the server wants one.
    pub creds: Option<PathBuf>,
    /// CA certificate(s) to trust for a `tls://` server, beyond the system's.
    pub tls_ca: Option<PathBuf>,
    /// The durable consumer a coordinator reads through; coordinators sharing a name
    /// share the work, each with its own name each gets every result.
    pub consumer: String,
}

/// A daemon's part in a fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicationRole {
    /// Publishes its results and checkpoints.
    Agent,
    /// Stores every agent's results and evaluates probes over locations.
    Coordinator,
}

/// `[page]`: the public status page's title and logo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageSpec {
    /// The page's `<title>` and heading (default [`PageSpec::DEFAULT_TITLE`]).
    pub title: String,
    /// An image shown before the title, read when the configuration was loaded.
    pub logo: Option<Logo>,
}

impl PageSpec {
    /// The title of a page whose `[page]` sets none.
    pub const DEFAULT_TITLE: &'static str = "Service status";
}

impl Default for PageSpec {
    fn default() -> Self {
        PageSpec {
            title: Self::DEFAULT_TITLE.to_owned(),
            logo: None,
        }
    }
}

/// A logo image the page inlines (the page loads nothing from elsewhere).
#[derive(Clone, PartialEq, Eq)]
pub struct Logo {
    /// The file it was read from.
    pub path: PathBuf,
    /// `image/png`, `image/jpeg` or `image/svg+xml`, from the file's content.
    pub media_type: &'static str,
    /// The file's bytes.
    pub bytes: Vec<u8>,
}

impl Logo {
    /// A `data:` URI holding the image, for an `<img src>`.
    pub fn data_uri(&self) -> String {
        format!(
            "data:{};base64,{}",
            self.media_type,
            <base64ct::Base64 as base64ct::Encoding>::encode_string(&self.bytes)
        )
    }
}

impl std::fmt::Debug for Logo {
    // The bytes would flood any debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logo")
            .field("path", &self.path)
            .field("media_type", &self.media_type)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}
