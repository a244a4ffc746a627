//! A real DNS server on loopback, for DNS probes and for `dns_server` on HTTP and TCP probes.
//!
//! [`TestDns`] serves an in-memory zone (hickory-server) on `127.0.0.1`, over UDP and TCP on
//! the same port, from inside the test's tokio runtime; dropping it stops it. Records are
//! written in zone-file syntax, so a test reads like the zone it needs:
//!
//! ```ignore
//! let dns = TestDns::builder("test.").record("api A 127.0.0.5").start().await;
//! // ask dns.addr: www.test. A → 127.0.0.1, api.test. A → 127.0.0.5
//! ```
//!
//! The zone always holds [`DEFAULT_RECORDS`] (relative to the origin) and the reverse zones
//! `in-addr.arpa.` and `ip6.arpa.` with `127.0.0.1 → www.<origin>` and `::1 → v6.<origin>`.
//! Names the server has no zone for are answered `REFUSED`; missing names in a zone
//! `NXDOMAIN`. [`Silent`] and [`closed_tcp_port`] stand in for servers that never answer.

// Not every test uses every helper here; the unused ones must not fail `clippy -D warnings`.
#![allow(dead_code)]

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use hickory_server::{
    Server,
    net::runtime::TokioRuntimeProvider,
    proto::{
        rr::{LowerName, Name, RecordSet, RrKey},
        serialize::txt::Parser,
    },
    store::in_memory::InMemoryZoneHandler,
    zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType},
};
use tokio::net::{TcpListener, UdpSocket};

/// The records every test zone holds, relative to its origin (`@` is the origin itself).
pub const DEFAULT_RECORDS: &str = r#"
@           SOA   ns1 admin 1 3600 600 86400 60
@           NS    ns1
ns1         A     127.0.0.1
www         A     127.0.0.1
v6          AAAA  ::1
alias       CNAME www
@           MX    10 mail
mail        A     127.0.0.1
@           TXT   "v=spf1 -all"
_http._tcp  SRV   0 5 80 www
@           CAA   0 issue "ca.test"
"#;

/// A DNS server for one test; it stops when dropped.
pub struct TestDns {
    /// Where it listens, for both UDP and TCP.
    pub addr: SocketAddr,
    /// The zone's origin, with its trailing dot (`"test."`).
    pub origin: String,
    server: Server<Catalog>,
}

impl TestDns {
    /// Serves [`DEFAULT_RECORDS`] under `origin` (e.g. `"test."`).
    pub async fn start(origin: &str) -> TestDns {
        TestDns::builder(origin).start().await
    }

    /// A server for `origin` to which a test adds its own records.
    pub fn builder(origin: &str) -> TestDnsBuilder {
        let origin = if origin.ends_with('.') {
            origin.to_owned()
        } else {
            format!("{origin}.")
        };
        TestDnsBuilder {
            origin,
            records: Vec::new(),
            reverse: Vec::new(),
        }
    }
}

impl Drop for TestDns {
    fn drop(&mut self) {
        // Dropping the server aborts its tasks too; cancelling first lets them end cleanly.
        self.server.shutdown_token().cancel();
    }
}

/// Collects the records of a [`TestDns`] before it starts.
pub struct TestDnsBuilder {
    origin: String,
    records: Vec<String>,
    reverse: Vec<(IpAddr, String)>,
}

impl TestDnsBuilder {
    /// Adds one record in zone-file syntax: `name [ttl] TYPE data`, names relative to the
    /// origin unless they end with a dot. A name given twice gets both values
    /// (`"www A 127.0.0.2"` makes `www` answer two addresses).
    pub fn record(mut self, line: &str) -> Self {
        self.records.push(line.to_owned());
        self
    }

    /// Adds a PTR record: `ip` points to `target` (absolute, or relative to the origin).
    pub fn ptr(mut self, ip: IpAddr, target: &str) -> Self {
        self.reverse.push((ip, target.to_owned()));
        self
    }

    /// Binds a free port on 127.0.0.1 for UDP and TCP and starts serving.
    ///
    /// Panics on a bad record or when no port is free: a test cannot run without its server.
    pub async fn start(self) -> TestDns {
        let origin = self.origin;
        let mut forward = DEFAULT_RECORDS.to_owned();
        for line in &self.records {
            forward.push_str(line);
            forward.push('\n');
        }
        let mut reverse_v4 = format!("@ SOA ns1.{origin} admin.{origin} 1 3600 600 86400 60\n");
        let mut reverse_v6 = reverse_v4.clone();
        let absolute = |target: &str| {
            if target.ends_with('.') {
                target.to_owned()
            } else {
                format!("{target}.{origin}")
            }
        };
        let mut pointers = vec![
            (IpAddr::from([127, 0, 0, 1]), format!("www.{origin}")),
            (
                IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
                format!("v6.{origin}"),
            ),
        ];
        pointers.extend(self.reverse.iter().map(|(ip, t)| (*ip, absolute(t))));
        for (ip, target) in pointers {
            let mut owner = Name::from(ip);
            owner.set_fqdn(true);
            let line = format!("{} PTR {target}\n", owner.to_ascii());
            match ip {
                IpAddr::V4(_) => reverse_v4.push_str(&line),
                IpAddr::V6(_) => reverse_v6.push_str(&line),
            }
        }

        let mut catalog = Catalog::new();
        for (zone, text) in [
            (origin.as_str(), forward.as_str()),
            ("in-addr.arpa.", reverse_v4.as_str()),
            ("ip6.arpa.", reverse_v6.as_str()),
        ] {
            let (name, handler) = zone_handler(zone, text);
            catalog.upsert(name, vec![handler]);
        }

        let (udp, tcp) = bind_same_port().await;
        let addr = udp.local_addr().expect("bound UDP socket has an address");
        let mut server = Server::new(catalog);
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 32);
        TestDns {
            addr,
            origin,
            server,
        }
    }
}

/// Parses one zone's text (with a default TTL) into a hickory zone handler.
fn zone_handler(origin: &str, text: &str) -> (LowerName, Arc<dyn ZoneHandler>) {
    let origin_name = Name::from_ascii(origin).expect("valid zone origin");
    let text = format!("$TTL 60\n{text}");
    let (name, records): (Name, BTreeMap<RrKey, RecordSet>) =
        Parser::new(text.as_str(), None, Some(origin_name))
            .parse()
            .unwrap_or_else(|e| panic!("bad test zone {origin}: {e}\n{text}"));
    let handler = InMemoryZoneHandler::<TokioRuntimeProvider>::new(
        name.clone(),
        records,
        ZoneType::Primary,
        AxfrPolicy::Deny,
    )
    .unwrap_or_else(|e| panic!("bad test zone {origin}: {e}"));
    let handler: Arc<dyn ZoneHandler> = Arc::new(handler);
    (LowerName::new(&name), handler)
}

/// A UDP socket and a TCP listener on one 127.0.0.1 port, so a probe may switch protocols.
async fn bind_same_port() -> (UdpSocket, TcpListener) {
    for _ in 0..20 {
        let udp = UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind a UDP socket on 127.0.0.1");
        let addr = udp.local_addr().expect("bound UDP socket has an address");
        // The TCP port of the same number may be taken by someone else: try another.
        if let Ok(tcp) = TcpListener::bind(addr).await {
            return (udp, tcp);
        }
    }
    panic!("no port on 127.0.0.1 is free for both UDP and TCP");
}

/// A UDP "DNS server" that reads nothing and never answers: queries to it time out.
pub struct Silent {
    /// Its address.
    pub addr: SocketAddr,
    _socket: UdpSocket,
}

impl Silent {
    /// Binds a free UDP port on 127.0.0.1.
    pub async fn bind() -> Silent {
        let socket = UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind a UDP socket on 127.0.0.1");
        let addr = socket
            .local_addr()
            .expect("bound UDP socket has an address");
        Silent {
            addr,
            _socket: socket,
        }
    }
}

/// A 127.0.0.1 address whose TCP port nobody listens on: connections are refused.
pub async fn closed_tcp_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a TCP listener on 127.0.0.1");
    listener
        .local_addr()
        .expect("bound TCP listener has an address")
    // The listener is dropped here, closing the port.
}

/// Resource record types and classes, as numbers on the wire.
pub mod wire {
    pub const A: u16 = 1;
    pub const CNAME: u16 = 5;
    pub const IN: u16 = 1;
    pub const CH: u16 = 3;
    pub const NOERROR: u8 = 0;
    pub const REFUSED: u8 = 5;
}

/// A reply a [`RawDns`] server sends to every query, written byte by byte so it can be as odd
/// as real servers are: records of any owner and class, no question section.
#[derive(Clone, Debug)]
pub struct RawReply {
    rcode: u8,
    question: bool,
    answers: Vec<Vec<u8>>,
}

impl RawReply {
    /// A reply with `rcode` that repeats the question and has no records yet.
    pub fn new(rcode: u8) -> Self {
        RawReply {
            rcode,
            question: true,
            answers: Vec::new(),
        }
    }

    /// Leaves the question section out (QDCOUNT 0), as some servers do when they refuse.
    pub fn without_question(mut self) -> Self {
        self.question = false;
        self
    }

    /// Adds an A record: `owner` (absolute, dots optional at the end) in `class`.
    pub fn a(self, owner: &str, class: u16, ip: [u8; 4]) -> Self {
        self.record(owner, wire::A, class, &ip)
    }

    /// Adds a CNAME record in class IN.
    pub fn cname(self, owner: &str, target: &str) -> Self {
        self.record(owner, wire::CNAME, wire::IN, &encode_name(target))
    }

    /// Adds any record.
    pub fn record(mut self, owner: &str, rtype: u16, class: u16, rdata: &[u8]) -> Self {
        let mut rr = encode_name(owner);
        rr.extend_from_slice(&rtype.to_be_bytes());
        rr.extend_from_slice(&class.to_be_bytes());
        rr.extend_from_slice(&60u32.to_be_bytes());
        let len = u16::try_from(rdata.len()).expect("short rdata");
        rr.extend_from_slice(&len.to_be_bytes());
        rr.extend_from_slice(rdata);
        self.answers.push(rr);
        self
    }

    /// This reply to `query` (its id, RD bit and question); `None` if `query` is no query.
    fn answer(&self, query: &[u8]) -> Option<Vec<u8>> {
        let question = question_bytes(query)?;
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(&query[..2]);
        // QR, opcode QUERY, RD copied; RA, rcode.
        out.push(0x80 | (query[2] & 0x01));
        out.push(0x80 | (self.rcode & 0x0f));
        out.extend_from_slice(&u16::from(self.question).to_be_bytes());
        let count = u16::try_from(self.answers.len()).expect("few records");
        out.extend_from_slice(&count.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
        if self.question {
            out.extend_from_slice(question);
        }
        for rr in &self.answers {
            out.extend_from_slice(rr);
        }
        Some(out)
    }
}

/// A name in uncompressed wire form.
fn encode_name(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        out.push(u8::try_from(label.len()).expect("short label"));
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

/// The question section (name, type, class) of a one-question query.
fn question_bytes(query: &[u8]) -> Option<&[u8]> {
    let mut at = 12;
    loop {
        let len = usize::from(*query.get(at)?);
        at += 1 + len;
        if len == 0 {
            break;
        }
    }
    query.get(12..at + 4)
}

/// A UDP DNS server on 127.0.0.1 that sends one fixed [`RawReply`] to every query; it stops
/// when dropped.
pub struct RawDns {
    /// Where it listens (UDP only).
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl RawDns {
    /// Binds a free UDP port on 127.0.0.1 and answers every query with `reply`.
    pub async fn start(reply: RawReply) -> RawDns {
        let socket = UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind a UDP socket on 127.0.0.1");
        let addr = socket
            .local_addr()
            .expect("bound UDP socket has an address");
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok((len, from)) = socket.recv_from(&mut buf).await {
                if let Some(answer) = reply.answer(&buf[..len]) {
                    let _ = socket.send_to(&answer, from).await;
                }
            }
        });
        RawDns { addr, task }
    }
}

impl Drop for RawDns {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A system resolver that hangs, for a run of the binary that must never reach the real one.
///
/// The binary runs in a private mount namespace (`unshare --mount`) where `/etc/resolv.conf`
/// names only a loopback server of ours that reads queries and never answers (with `options
/// timeout:30 attempts:3`, so getaddrinfo blocks for minutes) and `/etc/nsswitch.conf` says
/// `hosts: files dns`, so no other NSS module (systemd-resolved, mDNS) is asked. The mounts
/// come first and the binary is started only if they succeed. Needs root (port 53, mounts)
/// and util-linux `unshare`: [`HungResolver::start`] says why not and returns `None`.
pub struct HungResolver {
    /// The server `/etc/resolv.conf` names in the namespace: a random 127/8 address, port 53.
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
    queries: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl HungResolver {
    /// Binds the silent server and writes the namespace's files; `None` (after saying why on
    /// stderr) where the test cannot run.
    pub async fn start() -> Option<HungResolver> {
        let works = std::process::Command::new("unshare")
            .args(["--mount", "true"])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !works {
            eprintln!(
                "skipped: needs root and util-linux `unshare --mount` to fake a hung system resolver"
            );
            return None;
        }
        // A random loopback address: port 53 is the only one resolv.conf can name, and other
        // tests (or builders on this machine) may be using another.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let ip = std::net::Ipv4Addr::new(
            127,
            53,
            (std::process::id() % 250) as u8 + 1,
            (nanos % 250) as u8 + 1,
        );
        let addr = SocketAddr::from((ip, 53));
        let socket = match UdpSocket::bind(addr).await {
            Ok(socket) => socket,
            Err(e) => {
                eprintln!("skipped: cannot bind the fake resolver on {addr}: {e}");
                return None;
            }
        };
        let queries = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = Arc::clone(&queries);
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while socket.recv_from(&mut buf).await.is_ok() {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("resolv.conf"),
            format!("nameserver {ip}\noptions timeout:30 attempts:3\n"),
        )
        .expect("write resolv.conf");
        std::fs::write(dir.path().join("nsswitch.conf"), "hosts: files dns\n")
            .expect("write nsswitch.conf");
        Some(HungResolver {
            addr,
            dir,
            queries,
            task,
        })
    }

    /// `upledger <args>` inside the namespace; the process id is the binary's own (`unshare`
    /// and `sh` exec into it), so signals reach it.
    pub fn command(&self, args: &[&std::ffi::OsStr]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("unshare");
        command
            .args(["--mount", "--", "sh", "-c"])
            .arg(
                "mount --bind \"$1\" /etc/resolv.conf && mount --bind \"$2\" /etc/nsswitch.conf \
                 && shift 2 && exec \"$@\"",
            )
            .arg("sh")
            .arg(self.dir.path().join("resolv.conf"))
            .arg(self.dir.path().join("nsswitch.conf"))
            .arg(env!("CARGO_BIN_EXE_upledger"))
            .args(args)
            .env_remove("UPLEDGER_CONFIG")
            .env_remove("RUST_LOG")
            .env_remove("NOTIFY_SOCKET")
            .env("UPLEDGER_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// Queries received so far.
    pub fn queries(&self) -> usize {
        self.queries.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until a query has arrived (a lookup is hanging), or panics after `timeout`.
    pub async fn wait_for_query(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.queries() == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no query reached the fake resolver"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for HungResolver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
