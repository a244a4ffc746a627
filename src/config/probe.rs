//! One `[[probe]]` table (plus `[defaults]`) → a validated [`ProbeSpec`].

use std::{net::SocketAddr, str::FromStr};

use url::Url;

use super::{
    reader::{Ctx, Item, Section},
    spec::{
        CheckSpec, DnsProtocol, DnsSpec, HttpSpec, Origin, ProbeSpec, Rcode, RecordKind,
        StatusMatch, TcpSpec,
    },
};
use crate::model::{Percent, ProbeKind, ProbeName};

/// Keys every probe takes.
pub(crate) const COMMON_KEYS: &[&str] = &[
    "name",
    "kind",
    "interval",
    "timeout",
    "failure_threshold",
    "success_threshold",
    "stale_after",
    "target",
    "degraded_after",
    "channels",
    "remind_every",
    "locations",
    "quorum",
    "tags",
    "description",
    "display_name",
    "group",
    "enabled",
    "public",
];
const HTTP_KEYS: &[&str] = &[
    "url",
    "method",
    "headers",
    "body",
    "expect_status",
    "body_contains",
    "body_not_contains",
    "body_regex",
    "follow_redirects",
    "max_redirects",
    "tls_verify",
    "cert_expiry_warn",
    "max_body_bytes",
    "dns_server",
    "reuse_connection",
];
const TCP_KEYS: &[&str] = &[
    "address",
    "tls",
    "tls_verify",
    "cert_expiry_warn",
    "send",
    "expect",
    "dns_server",
];
const DNS_KEYS: &[&str] = &[
    "query",
    "record",
    "server",
    "protocol",
    "expect",
    "expect_rcode",
];

/// Every key a `[defaults]` table may set: any probe key but `name` and `kind`.
pub(crate) fn default_keys() -> Vec<&'static str> {
    let mut keys: Vec<&str> = COMMON_KEYS
        .iter()
        .chain(HTTP_KEYS)
        .chain(TCP_KEYS)
        .chain(DNS_KEYS)
        .copied()
        // A default display name would give every probe the same one.
        .filter(|k| !matches!(*k, "name" | "kind" | "display_name"))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// Built-in defaults (SPEC §1.1), in one place.
mod builtin {
    use std::time::Duration;

    pub const INTERVAL: Duration = Duration::from_secs(60);
    pub const TIMEOUT: Duration = Duration::from_secs(10);
    pub const FAILURE_THRESHOLD: u32 = 3;
    pub const SUCCESS_THRESHOLD: u32 = 2;
    pub const TARGET: &str = "99.9%";
    pub const CERT_EXPIRY_WARN: Duration = Duration::from_secs(14 * 24 * 3600);
    pub const MAX_BODY_BYTES: u64 = 1024 * 1024;
    pub const MAX_REDIRECTS: u32 = 10;
}

/// A probe table with `[defaults]` behind it.
struct Lookup<'a> {
    probe: Section<'a>,
    defaults: Option<Section<'a>>,
}

impl<'a> Lookup<'a> {
    /// The probe's own value, else the default.
    fn get(&self, key: &str) -> Option<Item<'a>> {
        self.get_with_origin(key).map(|(item, _)| item)
    }

    /// Like [`Lookup::get`], and whether the value was inherited from `[defaults]`.
    fn get_with_origin(&self, key: &str) -> Option<(Item<'a>, bool)> {
        match self.probe.get(key) {
            Some(item) => Some((item, false)),
            None => self.defaults.as_ref()?.get(key).map(|item| (item, true)),
        }
    }
}

/// Reads one probe; `None` when it has errors (all of them reported).
pub(crate) fn read_probe(
    ctx: &mut Ctx<'_>,
    probe: Section<'_>,
    defaults: Option<Section<'_>>,
    known_channels: &[&str],
) -> Option<ProbeSpec> {
    let errors_before = ctx.error_count();
    let lookup = Lookup { probe, defaults };
    let header = lookup.probe.span.clone();
    let file = lookup.probe.file;

    let name = match lookup.probe.get("name") {
        Some(item) => ctx.parsed(item, |s| ProbeName::new(s).map_err(|e| e.to_string())),
        None => {
            ctx.error_at(file, &header, "missing key \"name\"".into());
            None
        }
    };
    // Even an invalid name is the best way to say which probe a problem is in.
    if let Some(raw_name) = lookup.probe.get("name").and_then(|i| i.raw().as_str()) {
        ctx.set_context(format!("probe \"{raw_name}\""));
    }
    let kind = match lookup.probe.get("kind") {
        Some(item) => ctx.parsed(item, |s| match s {
            "http" => Ok(ProbeKind::Http),
            "tcp" => Ok(ProbeKind::Tcp),
            "dns" => Ok(ProbeKind::Dns),
            other => Err(format!(
                "unknown kind \"{other}\"; expected \"http\", \"tcp\" or \"dns\""
            )),
        }),
        None => {
            ctx.error_at(file, &header, "missing key \"kind\"".into());
            None
        }
    };

    let kind_keys = match kind {
        Some(ProbeKind::Http) => HTTP_KEYS,
        Some(ProbeKind::Tcp) => TCP_KEYS,
        Some(ProbeKind::Dns) => DNS_KEYS,
        None => &[],
    };
    if let Some(kind) = kind {
        let allowed: Vec<&str> = COMMON_KEYS.iter().chain(kind_keys).copied().collect();
        lookup
            .probe
            .reject_unknown_keys(ctx, &allowed, &format!("{} {kind} probe", article(kind)));
    }

    // Each value is `None` only when present but invalid (already reported), so cross-field
    // checks below run only on values that parsed.
    let interval = read_or(ctx, &lookup, "interval", Ctx::duration, builtin::INTERVAL);
    let timeout = read_or(ctx, &lookup, "timeout", Ctx::duration, builtin::TIMEOUT);
    if let (Some(interval), Some(timeout)) = (interval, timeout).filter_both(|i, t| t >= i) {
        let at = lookup.get("timeout").or_else(|| lookup.get("interval"));
        let message = format!(
            "timeout ({}) must be shorter than interval ({})",
            humantime::format_duration(timeout),
            humantime::format_duration(interval)
        );
        report_at(ctx, at, &lookup, message);
    }
    let failure_threshold = read_or(
        ctx,
        &lookup,
        "failure_threshold",
        |c, i| c.integer(i, 1, 1000),
        builtin::FAILURE_THRESHOLD,
    );
    let success_threshold = read_or(
        ctx,
        &lookup,
        "success_threshold",
        |c, i| c.integer(i, 1, 1000),
        builtin::SUCCESS_THRESHOLD,
    );
    let stale_after = match lookup.get("stale_after") {
        Some(_) => read(ctx, &lookup, "stale_after", Ctx::duration),
        None => interval.map(|i| i * 2),
    };
    if let (Some(interval), Some(stale_after)) = (interval, stale_after).filter_both(|i, s| s < i) {
        let message = format!(
            "stale_after ({}) must be at least the interval ({})",
            humantime::format_duration(stale_after),
            humantime::format_duration(interval)
        );
        report_at(ctx, lookup.get("stale_after"), &lookup, message);
    }
    let default_target = Percent::from_str(builtin::TARGET).unwrap_or(Percent::HUNDRED);
    let target = read_or(ctx, &lookup, "target", Ctx::percent, default_target);
    let degraded_after = read(ctx, &lookup, "degraded_after", Ctx::duration);
    let remind_every = read(ctx, &lookup, "remind_every", Ctx::duration);
    if let (Some(timeout), Some(degraded)) = (timeout, degraded_after).filter_both(|t, d| d >= t) {
        let message = format!(
            "degraded_after ({}) must be shorter than timeout ({})",
            humantime::format_duration(degraded),
            humantime::format_duration(timeout)
        );
        report_at(ctx, lookup.get("degraded_after"), &lookup, message);
    }
    let channels = read_or(
        ctx,
        &lookup,
        "channels",
        |ctx, item| ctx.string_list(item).map(Some),
        None,
    );
    if let (Some(item), Some(Some(channels))) = (lookup.get("channels"), &channels) {
        for channel in channels
            .iter()
            .filter(|c| !known_channels.contains(&c.as_str()))
        {
            ctx.error(
                item,
                format!("unknown channel \"{channel}\" (no [[channel]] has that name)"),
            );
        }
    }
    let tags = read_or(ctx, &lookup, "tags", Ctx::string_list, Vec::new());
    let description = read(ctx, &lookup, "description", Ctx::string);
    let display_name = read(ctx, &lookup, "display_name", |c, i| c.parsed(i, shown_text));
    let group = read(ctx, &lookup, "group", |c, i| c.parsed(i, shown_text));
    let locations = read_or(
        ctx,
        &lookup,
        "locations",
        super::replication::read_locations,
        Vec::new(),
    );
    let quorum = match (&locations, lookup.get("quorum")) {
        (Some(listed), None) => Some(super::replication::majority(listed.len())),
        (Some(listed), Some(item)) if !listed.is_empty() => {
            super::replication::read_quorum(ctx, Some(item), listed.len())
        }
        (Some(_), Some(item)) => {
            ctx.error(item, "quorum needs `locations` (the locations it counts)");
            None
        }
        (None, _) => None,
    };
    let enabled = read_or(ctx, &lookup, "enabled", Ctx::bool, true);
    let public = read_or(ctx, &lookup, "public", Ctx::bool, true);

    let check = match kind? {
        ProbeKind::Http => read_http(ctx, &lookup).map(CheckSpec::Http),
        ProbeKind::Tcp => read_tcp(ctx, &lookup).map(CheckSpec::Tcp),
        ProbeKind::Dns => read_dns(ctx, &lookup).map(CheckSpec::Dns),
    };

    if ctx.error_count() > errors_before {
        return None;
    }
    let (line, _) = file.position(&header);
    Some(ProbeSpec {
        name: name?,
        origin: Origin {
            file: file.path().to_owned(),
            line,
        },
        interval: interval?,
        timeout: timeout?,
        failure_threshold: failure_threshold?,
        success_threshold: success_threshold?,
        stale_after: stale_after?,
        target: target?,
        degraded_after,
        remind_every,
        channels: channels?,
        tags: tags?,
        description,
        display_name,
        group,
        enabled: enabled?,
        public: public?,
        locations: locations?,
        quorum: quorum?,
        check: check?,
    })
}

/// The most characters of a text the status page shows for the configuration (a display
/// name, a group heading, the page title): enough for any name, short enough for a phone.
pub(crate) const MAX_SHOWN_CHARS: usize = 100;

/// A text clients read on the status page: one line of 1 to [`MAX_SHOWN_CHARS`] characters,
/// spaces at either end dropped.
pub(crate) fn shown_text(text: &str) -> Result<String, String> {
    let text = text.trim();
    let chars = text.chars().count();
    if text.is_empty() {
        Err("must not be empty".to_owned())
    } else if chars > MAX_SHOWN_CHARS {
        Err(format!(
            "must be at most {MAX_SHOWN_CHARS} characters (this one has {chars})"
        ))
    } else if text.chars().any(char::is_control) {
        Err("must be one line of text (no line break or control character)".to_owned())
    } else {
        Ok(text.to_owned())
    }
}

/// Both values, when both are present and `conflict` holds between them.
trait FilterBoth<A, B> {
    fn filter_both(self, conflict: impl FnOnce(A, B) -> bool) -> (Option<A>, Option<B>);
}

impl<A: Copy, B: Copy> FilterBoth<A, B> for (Option<A>, Option<B>) {
    fn filter_both(self, conflict: impl FnOnce(A, B) -> bool) -> (Option<A>, Option<B>) {
        match self {
            (Some(a), Some(b)) if conflict(a, b) => (Some(a), Some(b)),
            _ => (None, None),
        }
    }
}

fn article(kind: ProbeKind) -> &'static str {
    match kind {
        ProbeKind::Http => "an",
        ProbeKind::Tcp | ProbeKind::Dns => "a",
    }
}

/// Reads `key` from the probe or the defaults with `reader`.
fn read<'a, 'c, T>(
    ctx: &mut Ctx<'c>,
    lookup: &Lookup<'a>,
    key: &str,
    reader: impl FnOnce(&mut Ctx<'c>, Item<'a>) -> Option<T>,
) -> Option<T> {
    let (item, inherited) = lookup.get_with_origin(key)?;
    if inherited {
        // A bad default is one problem of `[defaults]`, not one per probe.
        ctx.in_context("[defaults]", |ctx| reader(ctx, item))
    } else {
        reader(ctx, item)
    }
}

/// Reads `key` like [`read`], falling back to `default` when absent; `None` means invalid.
fn read_or<'a, 'c, T>(
    ctx: &mut Ctx<'c>,
    lookup: &Lookup<'a>,
    key: &str,
    reader: impl FnOnce(&mut Ctx<'c>, Item<'a>) -> Option<T>,
    default: T,
) -> Option<T> {
    match lookup.get(key) {
        Some(_) => read(ctx, lookup, key, reader),
        None => Some(default),
    }
}

/// Reads a key the check cannot do without.
fn required<'a, 'c, T>(
    ctx: &mut Ctx<'c>,
    lookup: &Lookup<'a>,
    key: &str,
    reader: impl FnOnce(&mut Ctx<'c>, Item<'a>) -> Option<T>,
) -> Option<T> {
    match lookup.get(key) {
        Some(item) => reader(ctx, item),
        None => {
            let kind = lookup
                .probe
                .get("kind")
                .and_then(|k| k.raw().as_str())
                .unwrap_or("");
            ctx.error_at(
                lookup.probe.file,
                &lookup.probe.span,
                format!("missing key \"{key}\" (required for {kind} probes)"),
            );
            None
        }
    }
}

/// Reports a cross-field problem at `item`, or at the probe header when no item is known.
fn report_at(ctx: &mut Ctx<'_>, item: Option<Item<'_>>, lookup: &Lookup<'_>, message: String) {
    match item {
        Some(item) => ctx.error_at(item.file, &item.span(), message),
        None => ctx.error_at(lookup.probe.file, &lookup.probe.span, message),
    }
}

fn read_http(ctx: &mut Ctx<'_>, lookup: &Lookup<'_>) -> Option<HttpSpec> {
    let url = required(ctx, lookup, "url", |c, i| c.parsed(i, parse_http_url));
    let method = read(ctx, lookup, "method", |c, i| c.parsed(i, parse_method))
        .unwrap_or_else(|| "GET".to_owned());
    let headers = read(ctx, lookup, "headers", Ctx::string_map).unwrap_or_default();
    if let Some(item) = lookup.get("headers") {
        for (name, value) in &headers {
            if let Err(message) = check_header(name, value) {
                ctx.error(item, message);
            }
        }
    }
    let body = read(ctx, lookup, "body", Ctx::string);
    let expect_status =
        read(ctx, lookup, "expect_status", read_statuses).unwrap_or(vec![StatusMatch::Class(2)]);
    let body_contains = read(ctx, lookup, "body_contains", Ctx::string);
    let body_not_contains = read(ctx, lookup, "body_not_contains", Ctx::string);
    let body_regex = read(ctx, lookup, "body_regex", |c, i| {
        c.parsed(i, |s| {
            regex::Regex::new(s).map_err(|e| {
                let reason = e.to_string();
                let last = reason.lines().last().unwrap_or("").trim();
                let last = last.strip_prefix("error: ").unwrap_or(last).to_owned();
                format!("invalid regex: {last}")
            })
        })
    });
    let follow_redirects = read(ctx, lookup, "follow_redirects", Ctx::bool).unwrap_or(true);
    // A chain of more than 100 hops is a loop or a misconfiguration, not a limit to raise.
    let max_redirects = read(ctx, lookup, "max_redirects", |c, i| c.integer(i, 0, 100))
        .unwrap_or(builtin::MAX_REDIRECTS);
    let tls_verify = read(ctx, lookup, "tls_verify", Ctx::bool).unwrap_or(true);
    let cert_expiry_warn =
        read(ctx, lookup, "cert_expiry_warn", Ctx::duration).unwrap_or(builtin::CERT_EXPIRY_WARN);
    let max_body_bytes = read(ctx, lookup, "max_body_bytes", |c, i| {
        c.integer(i, 0, i128::from(u32::MAX))
    })
    .unwrap_or(builtin::MAX_BODY_BYTES);
    let dns_server = read(ctx, lookup, "dns_server", |c, i| c.parsed(i, parse_server));
    let reuse_connection = read(ctx, lookup, "reuse_connection", Ctx::bool).unwrap_or(false);
    Some(HttpSpec {
        url: url?,
        method,
        headers,
        body,
        expect_status,
        body_contains,
        body_not_contains,
        body_regex,
        follow_redirects,
        max_redirects,
        tls_verify,
        cert_expiry_warn,
        max_body_bytes,
        dns_server,
        reuse_connection,
    })
}

fn read_tcp(ctx: &mut Ctx<'_>, lookup: &Lookup<'_>) -> Option<TcpSpec> {
    let address = required(ctx, lookup, "address", |c, i| c.parsed(i, parse_host_port));
    let tls = read(ctx, lookup, "tls", Ctx::bool).unwrap_or(false);
    let tls_verify = read(ctx, lookup, "tls_verify", Ctx::bool).unwrap_or(true);
    let cert_expiry_warn =
        read(ctx, lookup, "cert_expiry_warn", Ctx::duration).unwrap_or(builtin::CERT_EXPIRY_WARN);
    let send = read(ctx, lookup, "send", Ctx::string);
    let expect = read(ctx, lookup, "expect", Ctx::string);
    if let Some(item) = lookup
        .get("expect")
        .filter(|_| expect.as_deref() == Some(""))
    {
        ctx.error(item, "must not be empty");
    }
    let dns_server = read(ctx, lookup, "dns_server", |c, i| c.parsed(i, parse_server));
    let (host, port) = address?;
    Some(TcpSpec {
        host,
        port,
        tls,
        tls_verify,
        cert_expiry_warn,
        send,
        expect,
        dns_server,
    })
}

fn read_dns(ctx: &mut Ctx<'_>, lookup: &Lookup<'_>) -> Option<DnsSpec> {
    let query = required(ctx, lookup, "query", |c, i| {
        c.parsed(i, |s| {
            let valid = !s.is_empty() && s.len() <= 253 && !s.contains(char::is_whitespace);
            valid
                .then(|| s.to_owned())
                .ok_or_else(|| format!("invalid DNS name \"{s}\""))
        })
    });
    let record = read(ctx, lookup, "record", |c, i| {
        c.parsed(i, |s| {
            RecordKind::ALL
                .iter()
                .find(|(_, name)| name.eq_ignore_ascii_case(s))
                .map(|(kind, _)| *kind)
                .ok_or_else(|| {
                    format!("unknown record type \"{s}\"; expected one of A AAAA CNAME MX TXT NS SOA SRV CAA PTR")
                })
        })
    })
    .unwrap_or(RecordKind::A);
    let server = read(ctx, lookup, "server", |c, i| c.parsed(i, parse_server));
    let protocol = read(ctx, lookup, "protocol", |c, i| {
        c.parsed(i, |s| match s {
            "udp" => Ok(DnsProtocol::Udp),
            "tcp" => Ok(DnsProtocol::Tcp),
            other => Err(format!(
                "unknown protocol \"{other}\"; expected \"udp\" or \"tcp\""
            )),
        })
    })
    .unwrap_or(DnsProtocol::Udp);
    let expect = read(ctx, lookup, "expect", Ctx::string_list).unwrap_or_default();
    let expect_rcode = read(ctx, lookup, "expect_rcode", |c, i| {
        c.parsed(i, |s| {
            Rcode::ALL
                .iter()
                .find(|(_, name)| name.eq_ignore_ascii_case(s))
                .map(|(code, _)| *code)
                .ok_or_else(|| {
                    format!(
                        "unknown rcode \"{s}\"; expected NOERROR, NXDOMAIN, SERVFAIL or REFUSED"
                    )
                })
        })
    })
    .unwrap_or(Rcode::NoError);
    if let Some(item) = lookup.get("expect")
        && expect_rcode != Rcode::NoError
        && !expect.is_empty()
    {
        ctx.error(
            item,
            "cannot expect answers together with a non-NOERROR expect_rcode",
        );
    }
    Some(DnsSpec {
        query: query?,
        record,
        server,
        protocol,
        expect,
        expect_rcode,
    })
}

/// `expect_status`: codes (`301`) and classes (`"2xx"`), or one of them alone.
fn read_statuses(ctx: &mut Ctx<'_>, item: Item<'_>) -> Option<Vec<StatusMatch>> {
    use toml::de::DeValue;
    let one = |ctx: &mut Ctx<'_>, element: Item<'_>| match element.raw() {
        DeValue::Integer(_) => ctx.integer::<u16>(element, 100, 599).map(StatusMatch::Code),
        DeValue::String(_) => ctx.parsed(element, parse_status_class),
        _ => {
            ctx.error(
                element,
                "expected a status code like 200 or a class like \"2xx\"",
            );
            None
        }
    };
    match item.raw() {
        DeValue::Array(array) => {
            let mut out = Vec::new();
            for value in array.iter() {
                out.push(one(ctx, Item { value, ..item }));
            }
            if out.is_empty() {
                ctx.error(item, "must list at least one status");
                return None;
            }
            out.into_iter().collect()
        }
        _ => one(ctx, item).map(|s| vec![s]),
    }
}

fn parse_status_class(text: &str) -> Result<StatusMatch, String> {
    let bytes = text.as_bytes();
    match bytes {
        [digit @ b'1'..=b'5', b'x' | b'X', b'x' | b'X'] => Ok(StatusMatch::Class(digit - b'0')),
        _ => text
            .parse::<u16>()
            .ok()
            .filter(|code| (100..=599).contains(code))
            .map(StatusMatch::Code)
            .ok_or_else(|| {
                format!(
                    "invalid status \"{text}\"; expected a code like 200 or a class like \"2xx\""
                )
            }),
    }
}

fn parse_http_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("invalid URL \"{text}\": {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "invalid URL \"{text}\": scheme must be http or https, not \"{}\"",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("invalid URL \"{text}\": no host"));
    }
    Ok(url)
}

fn parse_method(text: &str) -> Result<String, String> {
    let token = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if token {
        Ok(text.to_ascii_uppercase())
    } else {
        Err(format!("invalid HTTP method \"{text}\""))
    }
}

fn check_header(name: &str, value: &str) -> Result<(), String> {
    reqwest::header::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("invalid header name \"{name}\""))?;
    reqwest::header::HeaderValue::from_str(value)
        .map_err(|_| format!("invalid value for header \"{name}\""))?;
    Ok(())
}

/// `host:port` or `[v6]:port`, with the host unbracketed.
pub(crate) fn parse_host_port(text: &str) -> Result<(String, u16), String> {
    let bad =
        |why: &str| format!("invalid address \"{text}\": {why} (expected host:port or [v6]:port)");
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, port) = rest
            .split_once("]:")
            .ok_or_else(|| bad("missing \"]:port\""))?;
        host.parse::<std::net::Ipv6Addr>()
            .map_err(|_| bad("not an IPv6 address inside brackets"))?;
        (host, port)
    } else {
        let (host, port) = text.rsplit_once(':').ok_or_else(|| bad("missing port"))?;
        if host.contains(':') {
            return Err(bad("IPv6 addresses need brackets"));
        }
        (host, port)
    };
    let valid_host = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'));
    if !valid_host {
        return Err(bad("invalid host"));
    }
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| bad("port must be 1-65535"))?;
    Ok((host.to_owned(), port))
}

/// A DNS server: `ip:port`, `[v6]:port`, or a bare IP (port 53).
pub(crate) fn parse_server(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    text.parse::<std::net::IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("invalid DNS server \"{text}\": expected an IP address with optional port, like \"192.0.2.53:53\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A probe's name, display name and group.
    type Shown = (String, Option<String>, Option<String>);

    /// Loads `probes` (with `main` as the main file) and returns each probe's name, display
    /// name and group, or the diagnostics, one a line.
    fn shown(main: &str, probes: &str) -> Result<Vec<Shown>, String> {
        let dir = tempfile::tempdir().expect("a temporary folder");
        std::fs::create_dir_all(dir.path().join("probes.d")).expect("a probes folder");
        std::fs::write(dir.path().join("upledger.toml"), main).expect("the main file");
        std::fs::write(dir.path().join("probes.d/p.toml"), probes).expect("a probe file");
        let config =
            crate::config::load(&dir.path().join("upledger.toml")).map_err(|e| e.to_string())?;
        Ok(config
            .probes
            .iter()
            .map(|p| (p.name.to_string(), p.display_name.clone(), p.group.clone()))
            .collect())
    }

    fn tcp(name: &str, extra: &str) -> String {
        format!("[[probe]]\nname = \"{name}\"\nkind = \"tcp\"\naddress = \"127.0.0.1:9\"\n{extra}")
    }

    #[test]
    fn display_names_and_groups_are_read_and_groups_may_be_defaulted() {
        let probes = [
            tcp("api", "display_name = \" Public API \"\ngroup = \"Core\"\n"),
            tcp("db", ""),
        ]
        .join("\n");
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(
            shown("", &probes),
            Ok(vec![
                ("api".to_owned(), some("Public API"), some("Core")),
                ("db".to_owned(), None, None),
            ])
        );
        assert_eq!(
            shown("[defaults]\ngroup = \"Everything\"\n", &probes),
            Ok(vec![
                ("api".to_owned(), some("Public API"), some("Core")),
                ("db".to_owned(), None, some("Everything")),
            ])
        );
    }

    #[test]
    fn bad_display_names_and_groups_are_located() {
        let long = "é".repeat(101);
        let probes = [
            tcp("a", "display_name = \"\"\n"),
            tcp("b", &format!("display_name = \"{long}\"\n")),
            tcp("c", "group = \"two\\nlines\"\n"),
            tcp("d", "group = 7\n"),
        ]
        .join("\n");
        let error = shown("", &probes).expect_err("invalid");
        for expected in [
            "p.toml:5:16: probe \"a\": display_name: must not be empty",
            "p.toml:11:16: probe \"b\": display_name: must be at most 100 characters (this one has 101)",
            "p.toml:17:9: probe \"c\": group: must be one line of text",
            "p.toml:23:9: probe \"d\": group: expected a string, found integer",
        ] {
            assert!(error.contains(expected), "{expected} not in:\n{error}");
        }
        let error =
            shown("[defaults]\ndisplay_name = \"x\"\n", &tcp("a", "")).expect_err("invalid");
        assert!(
            error.contains("upledger.toml:2:1: unknown key \"display_name\" in [defaults]"),
            "{error}"
        );
    }

    /// Names and headings are presentation, not terms of a report: the normalised form (whose
    /// hash the ledger commits to) leaves them out, so naming a probe keeps the hash it had.
    #[test]
    fn display_names_and_groups_leave_the_normalised_hash_alone() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        std::fs::create_dir_all(dir.path().join("probes.d")).expect("a probes folder");
        let main = dir.path().join("upledger.toml");
        std::fs::write(&main, "[page]\ntitle = \"ACME\"\n").expect("the main file");
        let hash = |probe: &str| {
            std::fs::write(dir.path().join("probes.d/p.toml"), probe).expect("a probe file");
            let config = crate::config::load(&main).expect("valid");
            crate::config::NormalisedConfig::from_config(&config)
                .expect("normalised")
                .sha256()
        };
        assert_eq!(
            hash(&tcp("api", "")),
            hash(&tcp(
                "api",
                "display_name = \"Public API\"\ngroup = \"Core\"\n"
            ))
        );
    }

    #[test]
    fn host_port_forms() {
        assert_eq!(
            parse_host_port("db.internal:5432").unwrap(),
            ("db.internal".into(), 5432)
        );
        assert_eq!(
            parse_host_port("127.0.0.1:80").unwrap(),
            ("127.0.0.1".into(), 80)
        );
        assert_eq!(parse_host_port("[::1]:443").unwrap(), ("::1".into(), 443));
        for bad in [
            "db",
            "db:",
            "db:0",
            "db:70000",
            "::1:80",
            "[nope]:80",
            ":80",
            "a b:1",
        ] {
            assert!(parse_host_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn status_classes_and_codes() {
        assert_eq!(parse_status_class("2xx").unwrap(), StatusMatch::Class(2));
        assert_eq!(parse_status_class("301").unwrap(), StatusMatch::Code(301));
        assert!(parse_status_class("6xx").is_err());
        assert!(parse_status_class("2x").is_err());
        assert!(StatusMatch::Class(2).matches(204));
        assert!(!StatusMatch::Class(2).matches(301));
    }

    #[test]
    fn servers_default_to_port_53() {
        assert_eq!(parse_server("127.0.0.1").unwrap().port(), 53);
        assert_eq!(parse_server("127.0.0.1:5353").unwrap().port(), 5353);
        assert_eq!(parse_server("[::1]:5353").unwrap().port(), 5353);
        assert!(parse_server("dns.example").is_err());
    }
}
