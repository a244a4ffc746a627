//! The DNS probe kind, and the resolver HTTP and TCP probes use when they name a `dns_server`.
//!
//! Every hickory type stays in this file: hickory's API moves between releases (STYLE.md), so
//! the rest of the crate sees only [`DnsChecker`], [`HostResolver`] and [`ResolveFailure`].
//! Queries go through hickory's wire format and low-level client rather than its caching
//! `Resolver`: every reply's raw response code is seen (NXDOMAIN can be the wanted answer),
//! nothing is cached, `/etc/hosts` is never read and no other server is tried, so a check
//! observes exactly one server's answer. Over UDP the exchange is done here, on a fresh
//! socket, with hickory's `Message` encoding: hickory's client spawns a task and builds a
//! multiplexer per query, and replacing it took a whole DNS check from 110 to 47 µs of CPU
//! (README, "Benchmarks"). TCP (and a truncated UDP answer's retry) uses hickory's client.
//! May use `model` and `config`.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use hickory_resolver::{
    config::ProtocolConfig,
    net::{NetError, client::ClientHandle, runtime::TokioRuntimeProvider, tcp::TcpClientStream},
    proto::{
        op::{DnsResponse, Message, Query, ResponseCode},
        rr::{DNSClass, Name, RData, Record, RecordType},
    },
    system_conf,
};
use tokio::time::Instant;

use super::{Failure, Observation, classify};
use crate::{
    config::{DnsProtocol, DnsSpec, Rcode, RecordKind},
    model::ErrorClass,
};

/// Why a host name handed to [`HostResolver`] gave no address.
///
/// HTTP and TCP probes carry it inside their own errors; [`classify`] finds it in the source
/// chain and calls the check `dns`, whatever layer wrapped it. It has no `source` on purpose:
/// its message is the innermost cause a check's detail shows.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum ResolveFailure {
    /// The server answered with an error code (NXDOMAIN, SERVFAIL, REFUSED…).
    #[error("{host} does not resolve: {rcode}")]
    Rcode {
        /// The host that was looked up.
        host: String,
        /// The response code, as `dig` spells it.
        rcode: String,
    },
    /// The name exists but has neither A nor AAAA records.
    #[error("{host} does not resolve: no A or AAAA records")]
    NoAddresses {
        /// The host that was looked up.
        host: String,
    },
    /// The host is not a valid domain name.
    #[error("invalid host name {host:?}: {reason}")]
    InvalidName {
        /// The rejected host.
        host: String,
        /// What hickory objected to.
        reason: String,
    },
    /// The server could not be asked or did not answer.
    #[error("cannot resolve {host}: DNS server {server}: {reason}")]
    Server {
        /// The host that was looked up.
        host: String,
        /// The server that failed.
        server: SocketAddr,
        /// What went wrong (timeout, refused, garbled reply).
        reason: String,
    },
}

/// A ready-to-run DNS check (`kind = "dns"`): one query, one server, one judged reply.
#[derive(Debug)]
pub(crate) struct DnsChecker {
    /// The name to ask for; an invalid `query` fails every check with its reason.
    name: Result<Name, String>,
    /// `query` as configured, for messages.
    query: String,
    kind: RecordKind,
    /// `None`: the first server of the system resolver configuration, read at each check so
    /// a changed `/etc/resolv.conf` is honoured without a reload.
    server: Option<SocketAddr>,
    protocol: DnsProtocol,
    expect: Vec<String>,
    expect_rcode: Rcode,
    /// The probe's timeout; hickory gets it too so it never retries past it.
    timeout: Duration,
}

impl DnsChecker {
    /// Prepares the query of `spec`; `timeout` is the probe's, which also bounds hickory's own
    /// retransmissions.
    pub fn new(spec: &DnsSpec, timeout: Duration) -> Self {
        DnsChecker {
            name: query_name(spec.record, &spec.query),
            query: spec.query.clone(),
            kind: spec.record,
            server: spec.server,
            protocol: spec.protocol,
            expect: spec.expect.clone(),
            expect_rcode: spec.expect_rcode,
            timeout,
        }
    }

    /// Asks the server once and judges the reply (SPEC §2: `dns`, `assertion`, `timeout`,
    /// `connect`, `protocol`, `io`).
    pub async fn check(&self) -> Observation {
        let name = match &self.name {
            Ok(name) => name,
            Err(reason) => {
                let detail = format!("invalid query {:?}: {reason}", self.query);
                return Failure::new(ErrorClass::Dns, detail).into();
            }
        };
        let server = match self.server {
            Some(server) => server,
            None => match system_server(self.protocol) {
                Ok(server) => server,
                Err(reason) => {
                    let detail = format!("no system resolver to ask: {reason}");
                    return Failure::new(ErrorClass::Dns, detail).into();
                }
            },
        };
        let rtype = record_type(self.kind);
        match ask(server, self.protocol, name.clone(), rtype, self.timeout).await {
            Ok(response) => {
                let answers = render_answers(&response, name, rtype);
                let rcode = rcode_name(response.metadata.response_code);
                let expectation = Expectation {
                    query: &self.query,
                    kind: self.kind,
                    expect: &self.expect,
                    rcode: self.expect_rcode,
                };
                match judge(&expectation, &rcode, &answers) {
                    Some(failure) => failure.into(),
                    None => Observation::passed(None),
                }
            }
            Err(error) => transport_failure(server, self.protocol, self.timeout, &error).into(),
        }
    }
}

/// Resolves host names through one configured DNS server (`dns_server` on HTTP and TCP probes).
///
/// Cheap to clone and shareable across tasks: the HTTP probe hands it to reqwest, which calls
/// it from its own tasks. Like [`DnsChecker`] it keeps no cache, so every check sees the
/// server's current answer.
#[derive(Debug, Clone)]
pub(crate) struct HostResolver {
    inner: Arc<HostResolverInner>,
}

#[derive(Debug)]
struct HostResolverInner {
    server: SocketAddr,
    timeout: Duration,
}

impl HostResolver {
    /// A resolver asking `server` over UDP (TCP when a reply is truncated), giving up on a
    /// lookup after `timeout`.
    pub fn new(server: SocketAddr, timeout: Duration) -> Self {
        HostResolver {
            inner: Arc::new(HostResolverInner { server, timeout }),
        }
    }

    /// The IPv4 then IPv6 addresses of `host`; IP literals (bracketed or not) come back as is.
    ///
    /// A and AAAA are asked at once; one family failing is fine when the other has addresses.
    pub(crate) async fn lookup_ip(&self, host: &str) -> Result<Vec<IpAddr>, ResolveFailure> {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let name = fqdn(host).map_err(|reason| ResolveFailure::InvalidName {
            host: host.to_owned(),
            reason,
        })?;
        let HostResolverInner { server, timeout } = *self.inner;
        let (v4, v6) = tokio::join!(
            ask(
                server,
                DnsProtocol::Udp,
                name.clone(),
                RecordType::A,
                timeout
            ),
            ask(
                server,
                DnsProtocol::Udp,
                name.clone(),
                RecordType::AAAA,
                timeout
            ),
        );
        let mut addresses = Vec::new();
        for (response, rtype) in [(&v4, RecordType::A), (&v6, RecordType::AAAA)] {
            let Ok(response) = response else { continue };
            if response.metadata.response_code == ResponseCode::NoError {
                addresses.extend(answers(response, &name, rtype).filter_map(|record| {
                    match &record.data {
                        RData::A(a) => Some(IpAddr::V4(a.0)),
                        RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
                        _ => None,
                    }
                }));
            }
        }
        if addresses.is_empty() {
            Err(lookup_failure(host, server, timeout, &v4, &v6))
        } else {
            Ok(addresses)
        }
    }
}

/// Explains an empty lookup: an error code beats a transport error beats "no records".
fn lookup_failure(
    host: &str,
    server: SocketAddr,
    timeout: Duration,
    v4: &Result<DnsResponse, NetError>,
    v6: &Result<DnsResponse, NetError>,
) -> ResolveFailure {
    let host = host.to_owned();
    for response in [v4, v6].into_iter().flatten() {
        let code = response.metadata.response_code;
        if code != ResponseCode::NoError {
            return ResolveFailure::Rcode {
                host,
                rcode: rcode_name(code),
            };
        }
    }
    match [v4, v6].into_iter().find_map(|r| r.as_ref().err()) {
        Some(error) => ResolveFailure::Server {
            host,
            server,
            reason: transport_error(timeout, error).1,
        },
        None => ResolveFailure::NoAddresses { host },
    }
}

/// Sends one query and waits for its reply, within `timeout` in all (connect, retransmissions
/// and a TCP retry of a truncated UDP reply included).
async fn ask(
    server: SocketAddr,
    protocol: DnsProtocol,
    name: Name,
    rtype: RecordType,
    timeout: Duration,
) -> Result<DnsResponse, NetError> {
    let deadline = Instant::now() + timeout;
    let attempt = |protocol, name| async move {
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::timeout_at(deadline, ask_once(server, protocol, name, rtype, left))
            .await
            .unwrap_or(Err(NetError::Timeout))
    };
    let response = attempt(protocol, name.clone()).await?;
    if protocol == DnsProtocol::Udp && response.metadata.truncation {
        // A truncated answer is incomplete: ask again over TCP, as every resolver does.
        return attempt(DnsProtocol::Tcp, name).await;
    }
    Ok(response)
}

/// One exchange over a fresh connection (or UDP socket): a probe must see the server as a new
/// client would.
async fn ask_once(
    server: SocketAddr,
    protocol: DnsProtocol,
    name: Name,
    rtype: RecordType,
    timeout: Duration,
) -> Result<DnsResponse, NetError> {
    if protocol == DnsProtocol::Udp {
        return ask_udp(server, name, rtype).await;
    }
    // On the heap: hickory's TCP exchange takes kilobytes that every UDP check would
    // otherwise allocate too.
    Box::pin(ask_tcp(server, name, rtype, timeout)).await
}

/// One exchange over a fresh TCP connection.
async fn ask_tcp(
    server: SocketAddr,
    name: Name,
    rtype: RecordType,
    timeout: Duration,
) -> Result<DnsResponse, NetError> {
    // The provider owns the task that drives the exchange (in a join set that aborts it when
    // the last clone goes): hold one until the reply is in.
    let provider = TokioRuntimeProvider::new();
    let mut exchange =
        TcpClientStream::exchange(server, None, timeout, None, provider.clone()).await?;
    let response = exchange.query(name, DNSClass::IN, rtype).await;
    drop(provider);
    response
}

/// Resends an unanswered UDP query this often (hickory's own floor), until the caller's
/// timeout ends the exchange: one lost datagram should not fail a check.
const UDP_RETRANSMIT: Duration = Duration::from_millis(333);

/// Room for a reply: a DNS answer over UDP without EDNS is at most 512 bytes (a longer one
/// is cut short and fails to decode: a `protocol` failure, as with hickory's own client).
const UDP_REPLY_ROOM: usize = 512;

/// One query over a fresh UDP socket with a random source port and id, as a new client would
/// send it (recursion desired, no EDNS). The socket is connected, so the kernel drops
/// datagrams from anyone but the server and reports ICMP "port unreachable" as a refused
/// connection; a datagram with another id or question (a late reply) is ignored. A reply
/// with our id and no question section at all is taken: some servers refuse that way
/// (`REFUSED` with only a header), and its rcode is the answer; it vouches for no records
/// (see [`answers`]). No deadline of its own: the caller bounds the whole exchange.
async fn ask_udp(
    server: SocketAddr,
    name: Name,
    rtype: RecordType,
) -> Result<DnsResponse, NetError> {
    let local = match server {
        SocketAddr::V4(_) => SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, 0)),
        SocketAddr::V6(_) => SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0)),
    };
    let socket = tokio::net::UdpSocket::bind(local).await?;
    socket.connect(server).await?;
    let mut query = Message::query();
    query.metadata.recursion_desired = true;
    query.add_query(Query::query(name, rtype));
    let datagram = query.to_vec()?;
    socket.send(&datagram).await?;
    let mut reply = [0u8; UDP_REPLY_ROOM];
    let mut resend = tokio::time::interval_at(Instant::now() + UDP_RETRANSMIT, UDP_RETRANSMIT);
    loop {
        let len = tokio::select! {
            received = socket.recv(&mut reply) => received?,
            _ = resend.tick() => {
                socket.send(&datagram).await?;
                continue;
            }
        };
        let response = DnsResponse::from_buffer(reply[..len].to_vec())?;
        if response.metadata.id == query.metadata.id
            && (response.queries == query.queries || response.queries.is_empty())
        {
            return Ok(response);
        }
    }
}

/// The failure of a DNS check whose query got no reply.
fn transport_failure(
    server: SocketAddr,
    protocol: DnsProtocol,
    timeout: Duration,
    error: &NetError,
) -> Failure {
    let transport = match protocol {
        DnsProtocol::Udp => "udp",
        DnsProtocol::Tcp => "tcp",
    };
    let (class, reason) = transport_error(timeout, error);
    Failure::new(class, format!("{server} ({transport}): {reason}"))
}

/// The class and a short reason for a query that got no reply.
fn transport_error(timeout: Duration, error: &NetError) -> (ErrorClass, String) {
    match error {
        NetError::Timeout => (
            ErrorClass::Timeout,
            format!("no answer within {}", humantime::format_duration(timeout)),
        ),
        NetError::Io(io) => (
            classify::classify_io_kind(io.kind()).unwrap_or(ErrorClass::Io),
            io.to_string(),
        ),
        // A reply hickory could not use: garbled, or not an answer to our question.
        other => (ErrorClass::Protocol, other.to_string()),
    }
}

/// The first server of the system resolver configuration, at the port it gives `protocol`.
fn system_server(protocol: DnsProtocol) -> Result<SocketAddr, String> {
    let (config, _options) = system_conf::read_system_conf().map_err(|e| e.to_string())?;
    let server = config
        .name_servers()
        .first()
        .ok_or_else(|| "the system configuration lists no name server".to_owned())?;
    let port = server
        .connections
        .iter()
        .find(|c| match protocol {
            DnsProtocol::Udp => matches!(c.protocol, ProtocolConfig::Udp),
            DnsProtocol::Tcp => matches!(c.protocol, ProtocolConfig::Tcp),
        })
        .map_or(53, |c| c.port);
    Ok(SocketAddr::new(server.ip, port))
}

/// The name a probe asks for: PTR probes may give the IP address itself.
fn query_name(kind: RecordKind, query: &str) -> Result<Name, String> {
    match query.parse::<IpAddr>() {
        Ok(ip) if kind == RecordKind::Ptr => fqdn(&reverse_name(ip)),
        _ => fqdn(query),
    }
}

/// `name` as an absolute name: monitoring never applies search domains.
fn fqdn(name: &str) -> Result<Name, String> {
    let mut name = Name::from_utf8(name).map_err(|e| e.to_string())?;
    name.set_fqdn(true);
    Ok(name)
}

/// The `in-addr.arpa.` / `ip6.arpa.` name whose PTR record names `ip`.
fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa.")
        }
        IpAddr::V6(v6) => {
            let mut name = String::with_capacity(73);
            for byte in v6.octets().iter().rev() {
                name.push_str(&format!("{:x}.{:x}.", byte & 0x0f, byte >> 4));
            }
            name.push_str("ip6.arpa.");
            name
        }
    }
}

fn record_type(kind: RecordKind) -> RecordType {
    match kind {
        RecordKind::A => RecordType::A,
        RecordKind::Aaaa => RecordType::AAAA,
        RecordKind::Cname => RecordType::CNAME,
        RecordKind::Mx => RecordType::MX,
        RecordKind::Txt => RecordType::TXT,
        RecordKind::Ns => RecordType::NS,
        RecordKind::Soa => RecordType::SOA,
        RecordKind::Srv => RecordType::SRV,
        RecordKind::Caa => RecordType::CAA,
        RecordKind::Ptr => RecordType::PTR,
    }
}

/// The config spelling of a record type, for messages.
fn kind_name(kind: RecordKind) -> &'static str {
    RecordKind::ALL
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or("?", |(_, name)| name)
}

/// A response code as `dig` prints it, so messages match what operators know.
fn rcode_name(code: ResponseCode) -> String {
    let name = match code {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::NotImp => "NOTIMP",
        ResponseCode::Refused => "REFUSED",
        ResponseCode::YXDomain => "YXDOMAIN",
        ResponseCode::YXRRSet => "YXRRSET",
        ResponseCode::NXRRSet => "NXRRSET",
        ResponseCode::NotAuth => "NOTAUTH",
        ResponseCode::NotZone => "NOTZONE",
        other => return format!("RCODE{}", u16::from(other)),
    };
    name.to_owned()
}

/// One answer record in presentation form, plus the shorter form `expect` may use instead
/// (the MX exchange, the SRV target, the CAA value).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rendered {
    text: String,
    short: Option<String>,
}

impl Rendered {
    fn plain(text: String) -> Self {
        Rendered { text, short: None }
    }
}

/// The answer records of the asked type (a CNAME chain leading to them is left out), as
/// [`answers`] admits them.
fn render_answers(response: &DnsResponse, name: &Name, rtype: RecordType) -> Vec<Rendered> {
    answers(response, name, rtype)
        .filter_map(|record| render(&record.data))
        .collect()
}

/// Longest CNAME chain followed from the question: real chains have a few links, and a loop
/// must end.
const MAX_CNAME_CHAIN: usize = 8;

/// The records of a reply that answer the question `name`/`rtype` as a stub resolver (glibc)
/// takes them: class `IN`, of type `rtype`, owned by `name` or by a name the reply's CNAME
/// chain from `name` leads to. Anything else in the answer section (records of another
/// owner, another class, a reply without a question section) answers nothing we asked.
fn answers<'a>(
    response: &'a DnsResponse,
    name: &'a Name,
    rtype: RecordType,
) -> impl Iterator<Item = &'a Record> + 'a {
    let asked = !response.queries.is_empty();
    response.answers.iter().filter(move |record| {
        asked
            && record.dns_class == DNSClass::IN
            && record.record_type() == rtype
            && on_chain(&response.answers, name, &record.name, rtype)
    })
}

/// Whether `owner` is the question `name` or, unless CNAMEs themselves were asked for, a name
/// the CNAME records of `records` lead to from it.
fn on_chain(records: &[Record], name: &Name, owner: &Name, rtype: RecordType) -> bool {
    let mut current = name;
    for _ in 0..=MAX_CNAME_CHAIN {
        if owner == current {
            return true;
        }
        if rtype == RecordType::CNAME {
            return false;
        }
        let next = records.iter().find_map(|record| match &record.data {
            RData::CNAME(target) if record.dns_class == DNSClass::IN && record.name == *current => {
                Some(&target.0)
            }
            _ => None,
        });
        match next {
            Some(next) => current = next,
            None => return false,
        }
    }
    false
}

/// The natural presentation of one record, names without their trailing dot.
fn render(data: &RData) -> Option<Rendered> {
    let rendered = match data {
        RData::A(a) => Rendered::plain(a.0.to_string()),
        RData::AAAA(aaaa) => Rendered::plain(aaaa.0.to_string()),
        RData::CNAME(cname) => Rendered::plain(name_text(&cname.0)),
        RData::NS(ns) => Rendered::plain(name_text(&ns.0)),
        RData::PTR(ptr) => Rendered::plain(name_text(&ptr.0)),
        RData::SOA(soa) => Rendered::plain(name_text(&soa.mname)),
        RData::MX(mx) => {
            let exchange = name_text(&mx.exchange);
            Rendered {
                text: format!("{} {exchange}", mx.preference),
                short: Some(exchange),
            }
        }
        RData::TXT(txt) => Rendered::plain(String::from_utf8_lossy(&txt.txt_data.concat()).into()),
        RData::SRV(srv) => {
            let target = name_text(&srv.target);
            Rendered {
                text: format!("{} {} {} {target}", srv.priority, srv.weight, srv.port),
                short: Some(target),
            }
        }
        RData::CAA(caa) => {
            let value = String::from_utf8_lossy(&caa.value).into_owned();
            Rendered {
                text: format!("{} {} \"{value}\"", caa.flags(), caa.tag),
                short: Some(value),
            }
        }
        _ => return None,
    };
    Some(rendered)
}

fn name_text(name: &Name) -> String {
    let text = name.to_string();
    match text.strip_suffix('.') {
        Some(stripped) if !stripped.is_empty() => stripped.to_owned(),
        _ => text,
    }
}

/// Whether the answer `answer` satisfies the `expect` entry `expected`.
fn matches(kind: RecordKind, expected: &str, answer: &Rendered) -> bool {
    if matches!(kind, RecordKind::A | RecordKind::Aaaa) {
        // "::1" and "0:0::1" are the same address.
        if let (Ok(want), Ok(got)) = (
            expected.trim().parse::<IpAddr>(),
            answer.text.parse::<IpAddr>(),
        ) {
            return want == got;
        }
    }
    let want = normalize(kind, expected);
    normalize(kind, &answer.text) == want
        || answer
            .short
            .as_deref()
            .is_some_and(|short| normalize(kind, short) == want)
}

/// Case-folded, and for everything but TXT: single spaces, no quotes, no trailing dots.
fn normalize(kind: RecordKind, value: &str) -> String {
    let value = value.trim().to_lowercase();
    if kind == RecordKind::Txt {
        return match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            Some(unquoted) => unquoted.to_owned(),
            None => value,
        };
    }
    value
        .split_whitespace()
        .map(|token| {
            let token = token.trim_matches('"');
            match token.strip_suffix('.') {
                Some(stripped) if !stripped.is_empty() => stripped,
                _ => token,
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What a reply must look like: the probe's `record`, `expect` and `expect_rcode`.
struct Expectation<'a> {
    query: &'a str,
    kind: RecordKind,
    expect: &'a [String],
    rcode: Rcode,
}

/// Judges a reply; `None` means the check passed.
fn judge(expectation: &Expectation<'_>, rcode: &str, answers: &[Rendered]) -> Option<Failure> {
    let query = expectation.query;
    let kind = kind_name(expectation.kind);
    if rcode != expectation.rcode.as_str() {
        return Some(if expectation.rcode == Rcode::NoError {
            Failure::new(
                ErrorClass::Dns,
                format!("{query} does not resolve: {rcode}"),
            )
        } else {
            Failure::new(
                ErrorClass::Assertion,
                format!(
                    "expected {} for {query} {kind}, got {rcode}",
                    expectation.rcode.as_str()
                ),
            )
        });
    }
    if expectation.expect.is_empty() {
        if expectation.rcode == Rcode::NoError && answers.is_empty() {
            return Some(Failure::new(
                ErrorClass::Dns,
                format!("{query} has no {kind} records"),
            ));
        }
        return None;
    }
    let missing: Vec<&str> = expectation
        .expect
        .iter()
        .filter(|want| !answers.iter().any(|a| matches(expectation.kind, want, a)))
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        return None;
    }
    let got = if answers.is_empty() {
        format!("no {kind} records")
    } else {
        answers
            .iter()
            .map(|a| a.text.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    Some(Failure::new(
        ErrorClass::Assertion,
        format!("expected {}, got {got}", missing.join(", ")),
    ))
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use hickory_resolver::proto::{
        op::OpCode,
        rr::rdata::{A, AAAA, CAA, CNAME, MX, NS, PTR, SOA, SRV, TXT},
    };

    use super::*;

    fn name(text: &str) -> Name {
        fqdn(text).expect("test names are valid")
    }

    fn rendered(data: RData) -> Rendered {
        render(&data).expect("a supported record type")
    }

    fn expectation<'a>(kind: RecordKind, expect: &'a [String], rcode: Rcode) -> Expectation<'a> {
        Expectation {
            query: "www.test",
            kind,
            expect,
            rcode,
        }
    }

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    // 127.0.0.127 reads the same reversed: the reverse names below stay recognisably
    // loopback.
    #[test]
    fn reverse_names_for_both_families() {
        assert_eq!(
            reverse_name(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 127))),
            "127.0.0.127.in-addr.arpa."
        );
        assert_eq!(
            reverse_name(IpAddr::V4(Ipv4Addr::new(127, 1, 2, 127))),
            "127.2.1.127.in-addr.arpa.",
            "octets in reverse order"
        );
        let v6: Ipv6Addr = "2001:db8::567:89ab".parse().expect("valid");
        assert_eq!(
            reverse_name(IpAddr::V6(v6)),
            "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."
        );
    }

    #[test]
    fn ptr_queries_accept_an_address_or_an_arpa_name() {
        let from_ip = query_name(RecordKind::Ptr, "127.0.0.127").expect("valid");
        let from_arpa = query_name(RecordKind::Ptr, "127.0.0.127.in-addr.arpa").expect("valid");
        assert_eq!(from_ip, from_arpa);
        assert_eq!(from_ip.to_string(), "127.0.0.127.in-addr.arpa.");
        // Only PTR turns addresses around.
        let a = query_name(RecordKind::A, "www.test").expect("valid");
        assert!(a.is_fqdn());
    }

    #[test]
    fn invalid_query_names_are_reported() {
        let long_label = "a".repeat(64);
        assert!(query_name(RecordKind::A, &long_label).is_err());
    }

    #[test]
    fn renders_each_type_in_presentation_form() {
        let cases = [
            (RData::A(A(Ipv4Addr::new(127, 0, 0, 1))), "127.0.0.1", None),
            (RData::AAAA(AAAA(Ipv6Addr::LOCALHOST)), "::1", None),
            (RData::CNAME(CNAME(name("www.test"))), "www.test", None),
            (RData::NS(NS(name("ns1.test"))), "ns1.test", None),
            (RData::PTR(PTR(name("www.test"))), "www.test", None),
            (
                RData::MX(MX::new(10, name("mail.test"))),
                "10 mail.test",
                Some("mail.test"),
            ),
            (
                RData::TXT(TXT::new(vec!["v=spf1 ".into(), "-all".into()])),
                "v=spf1 -all",
                None,
            ),
            (
                RData::SRV(SRV::new(0, 5, 80, name("www.test"))),
                "0 5 80 www.test",
                Some("www.test"),
            ),
            (
                RData::SOA(SOA::new(
                    name("ns1.test"),
                    name("admin.test"),
                    1,
                    1,
                    1,
                    1,
                    1,
                )),
                "ns1.test",
                None,
            ),
            (
                RData::CAA(CAA::new_issue(
                    false,
                    Some(Name::from_ascii("ca.test").expect("valid")),
                    vec![],
                )),
                "0 issue \"ca.test\"",
                Some("ca.test"),
            ),
        ];
        for (data, text, short) in cases {
            let got = rendered(data);
            assert_eq!(got.text, text);
            assert_eq!(got.short.as_deref(), short, "{text}");
        }
    }

    #[test]
    fn the_root_name_keeps_its_dot() {
        assert_eq!(name_text(&Name::root()), ".");
    }

    #[test]
    fn matching_ignores_case_trailing_dots_and_quotes() {
        let mx = Rendered {
            text: "10 mail.test".into(),
            short: Some("mail.test".into()),
        };
        for want in [
            "10 mail.test",
            "10 MAIL.test.",
            "mail.test.",
            "10  mail.test",
        ] {
            assert!(matches(RecordKind::Mx, want, &mx), "{want}");
        }
        assert!(!matches(RecordKind::Mx, "20 mail.test", &mx));
        assert!(!matches(RecordKind::Mx, "mail", &mx));

        let caa = Rendered {
            text: "0 issue \"ca.test\"".into(),
            short: Some("ca.test".into()),
        };
        for want in [
            "0 issue \"ca.test\"",
            "0 issue ca.test",
            "ca.test",
            "CA.TEST.",
        ] {
            assert!(matches(RecordKind::Caa, want, &caa), "{want}");
        }

        let txt = Rendered::plain("v=spf1 -all".into());
        assert!(matches(RecordKind::Txt, "v=spf1 -all", &txt));
        assert!(matches(RecordKind::Txt, "\"V=SPF1 -all\"", &txt));
        assert!(!matches(RecordKind::Txt, "v=spf1", &txt));
    }

    #[test]
    fn addresses_compare_by_value() {
        let v6 = Rendered::plain("::1".into());
        assert!(matches(RecordKind::Aaaa, "0:0:0:0:0:0:0:1", &v6));
        let v4 = Rendered::plain("127.0.0.1".into());
        assert!(matches(RecordKind::A, " 127.0.0.1 ", &v4));
        assert!(!matches(RecordKind::A, "127.0.0.2", &v4));
    }

    #[test]
    fn all_expected_values_present_passes() {
        let expect = strings(&["127.0.0.2", "127.0.0.1"]);
        let answers = [
            Rendered::plain("127.0.0.1".into()),
            Rendered::plain("127.0.0.2".into()),
        ];
        let exp = expectation(RecordKind::A, &expect, Rcode::NoError);
        assert_eq!(judge(&exp, "NOERROR", &answers), None);
    }

    #[test]
    fn a_missing_value_is_an_assertion_naming_what_came() {
        let expect = strings(&["192.0.2.9"]);
        let answers = [
            Rendered::plain("127.0.0.1".into()),
            Rendered::plain("127.0.0.2".into()),
        ];
        let exp = expectation(RecordKind::A, &expect, Rcode::NoError);
        let failure = judge(&exp, "NOERROR", &answers).expect("fails");
        assert_eq!(failure.class, ErrorClass::Assertion);
        assert_eq!(
            failure.detail,
            "expected 192.0.2.9, got 127.0.0.1, 127.0.0.2"
        );
    }

    #[test]
    fn nxdomain_when_noerror_wanted_is_dns() {
        let exp = expectation(RecordKind::A, &[], Rcode::NoError);
        let failure = judge(&exp, "NXDOMAIN", &[]).expect("fails");
        assert_eq!(failure.class, ErrorClass::Dns);
        assert_eq!(failure.detail, "www.test does not resolve: NXDOMAIN");
        for code in ["SERVFAIL", "REFUSED"] {
            let failure = judge(&exp, code, &[]).expect("fails");
            assert_eq!(failure.class, ErrorClass::Dns, "{code}");
        }
    }

    #[test]
    fn nxdomain_can_be_the_wanted_answer() {
        let exp = expectation(RecordKind::A, &[], Rcode::NxDomain);
        assert_eq!(judge(&exp, "NXDOMAIN", &[]), None);
    }

    #[test]
    fn another_rcode_than_a_negative_expectation_is_an_assertion() {
        let exp = expectation(RecordKind::A, &[], Rcode::NxDomain);
        let answers = [Rendered::plain("127.0.0.1".into())];
        let failure = judge(&exp, "NOERROR", &answers).expect("fails");
        assert_eq!(failure.class, ErrorClass::Assertion);
        assert_eq!(
            failure.detail,
            "expected NXDOMAIN for www.test A, got NOERROR"
        );
    }

    #[test]
    fn nodata_is_dns_without_expect_and_assertion_with_it() {
        let none = expectation(RecordKind::Aaaa, &[], Rcode::NoError);
        let failure = judge(&none, "NOERROR", &[]).expect("fails");
        assert_eq!(failure.class, ErrorClass::Dns);
        assert_eq!(failure.detail, "www.test has no AAAA records");

        let expect = strings(&["::1"]);
        let some = expectation(RecordKind::Aaaa, &expect, Rcode::NoError);
        let failure = judge(&some, "NOERROR", &[]).expect("fails");
        assert_eq!(failure.class, ErrorClass::Assertion);
        assert_eq!(failure.detail, "expected ::1, got no AAAA records");
    }

    #[test]
    fn rcodes_are_named_like_dig() {
        assert_eq!(rcode_name(ResponseCode::NXDomain), "NXDOMAIN");
        assert_eq!(rcode_name(ResponseCode::Refused), "REFUSED");
        assert_eq!(rcode_name(ResponseCode::BADCOOKIE), "RCODE23");
        for (code, text) in Rcode::ALL {
            let hickory = match code {
                Rcode::NoError => ResponseCode::NoError,
                Rcode::NxDomain => ResponseCode::NXDomain,
                Rcode::ServFail => ResponseCode::ServFail,
                Rcode::Refused => ResponseCode::Refused,
            };
            assert_eq!(rcode_name(hickory), text);
        }
    }

    /// A reply to `question` (none: a header-only reply) with these answer records.
    fn reply(question: Option<&str>, rtype: RecordType, records: Vec<Record>) -> DnsResponse {
        let mut message = Message::response(7, OpCode::Query);
        if let Some(question) = question {
            message.add_query(Query::query(name(question), rtype));
        }
        message.add_answers(records);
        DnsResponse::from_message(message).expect("a valid message")
    }

    fn a(owner: &str, ip: [u8; 4]) -> Record {
        Record::from_rdata(name(owner), 60, RData::A(A(Ipv4Addr::from(ip))))
    }

    fn cname(owner: &str, target: &str) -> Record {
        Record::from_rdata(name(owner), 60, RData::CNAME(CNAME(name(target))))
    }

    fn answered(response: &DnsResponse, question: &str, rtype: RecordType) -> Vec<String> {
        render_answers(response, &name(question), rtype)
            .into_iter()
            .map(|r| r.text)
            .collect()
    }

    #[test]
    fn records_of_another_owner_answer_nothing() {
        let response = reply(
            Some("www.test"),
            RecordType::A,
            vec![
                a("other.test", [127, 0, 0, 2]),
                a("WWW.Test", [127, 0, 0, 1]),
            ],
        );
        assert_eq!(
            answered(&response, "www.test", RecordType::A),
            ["127.0.0.1"]
        );
        let stray = reply(
            Some("www.test"),
            RecordType::A,
            vec![a("other.test", [127, 0, 0, 2])],
        );
        assert!(answered(&stray, "www.test", RecordType::A).is_empty());
    }

    #[test]
    fn the_cname_chain_from_the_question_is_followed_in_any_order() {
        let response = reply(
            Some("alias.test"),
            RecordType::A,
            vec![
                a("www.test", [127, 0, 0, 1]),
                cname("mid.test", "www.test"),
                cname("alias.test", "mid.test"),
                // Reached by a chain that does not start at the question.
                cname("elsewhere.test", "far.test"),
                a("far.test", [127, 0, 0, 9]),
            ],
        );
        assert_eq!(
            answered(&response, "alias.test", RecordType::A),
            ["127.0.0.1"]
        );
        // Asking for the CNAME itself: only the question's own record.
        let response = reply(
            Some("alias.test"),
            RecordType::CNAME,
            vec![
                cname("alias.test", "mid.test"),
                cname("mid.test", "www.test"),
            ],
        );
        assert_eq!(
            answered(&response, "alias.test", RecordType::CNAME),
            ["mid.test"]
        );
    }

    #[test]
    fn a_cname_loop_ends() {
        let response = reply(
            Some("a.test"),
            RecordType::A,
            vec![cname("a.test", "b.test"), cname("b.test", "a.test")],
        );
        assert!(answered(&response, "a.test", RecordType::A).is_empty());
    }

    #[test]
    fn records_of_another_class_answer_nothing() {
        let mut chaos = a("www.test", [127, 0, 0, 2]);
        chaos.dns_class = DNSClass::CH;
        let mut chaos_cname = cname("alias.test", "www.test");
        chaos_cname.dns_class = DNSClass::CH;
        let response = reply(
            Some("www.test"),
            RecordType::A,
            vec![chaos, a("www.test", [127, 0, 0, 1])],
        );
        assert_eq!(
            answered(&response, "www.test", RecordType::A),
            ["127.0.0.1"]
        );
        let via_chaos = reply(
            Some("alias.test"),
            RecordType::A,
            vec![chaos_cname, a("www.test", [127, 0, 0, 1])],
        );
        assert!(answered(&via_chaos, "alias.test", RecordType::A).is_empty());
    }

    #[test]
    fn a_reply_without_a_question_vouches_for_no_records() {
        let response = reply(None, RecordType::A, vec![a("www.test", [127, 0, 0, 1])]);
        assert!(answered(&response, "www.test", RecordType::A).is_empty());
    }

    #[tokio::test]
    async fn ip_literals_skip_the_server() {
        // No DNS server listens on the discard port: a literal must never need one.
        let resolver = HostResolver::new(
            "127.0.0.1:9".parse().expect("valid"),
            Duration::from_millis(50),
        );
        let got = resolver.lookup_ip("[::1]").await.expect("a literal");
        assert_eq!(got, vec![IpAddr::V6(Ipv6Addr::LOCALHOST)]);
        let got = resolver.lookup_ip("127.0.0.7").await.expect("a literal");
        assert_eq!(got, vec![IpAddr::V4(Ipv4Addr::new(127, 0, 0, 7))]);
    }

    #[tokio::test]
    async fn an_unanswered_lookup_is_a_resolve_failure() {
        let silent = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let server = silent.local_addr().expect("bound");
        let resolver = HostResolver::new(server, Duration::from_millis(200));
        let err = resolver.lookup_ip("www.test").await.expect_err("no answer");
        assert!(matches!(err, ResolveFailure::Server { .. }), "{err}");
        assert!(err.to_string().contains("www.test"), "{err}");
        let classified = classify::classify(&err);
        assert_eq!(classified, ErrorClass::Dns);
    }
}
