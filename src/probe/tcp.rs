//! The TCP check: resolve, connect, optionally a TLS handshake, then an optional send/expect
//! exchange on the first bytes of the conversation.
//!
//! The overall timeout is the caller's; this module only says what happened.
//! May use `model`, `config` and the sibling probe modules.

use std::{
    io,
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use rustls::pki_types::ServerName;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpStream,
    time::Instant,
};
use tokio_rustls::TlsConnector;

use super::{Failure, Observation, SetupError, Toolkit, dns::HostResolver, tls};
use crate::{
    config::TcpSpec,
    model::{CertStatus, ErrorClass, ProbeName},
};

/// How much of the conversation `expect` searches. Banners and short replies fit many times
/// over; a peer that streams without ever saying the expected text is not read (or kept in
/// memory) without end: once this much has arrived without it, the answer is judged wrong.
const EXPECT_LIMIT: usize = 64 * 1024;

/// How much room each read gets: larger than most whole replies, so a typical exchange takes
/// one read.
const READ_CHUNK: usize = 4096;

/// Longest excerpt of received or expected text shown in a failure detail, in characters.
const EXCERPT_CHARS: usize = 60;

/// A prepared TCP check of one probe.
pub(crate) struct TcpChecker {
    endpoint: Endpoint,
    resolver: Option<HostResolver>,
    tls: Option<TlsSetup>,
    send: Option<Vec<u8>>,
    expect: Option<String>,
    /// The probe's timeout, for the failure detail of an exchange cut short by it.
    timeout: Duration,
}

/// What the TLS handshake needs, prepared once.
struct TlsSetup {
    connector: TlsConnector,
    /// SNI and the name the certificate must be valid for: the host name, or the IP address.
    server_name: ServerName<'static>,
    cert_expiry_warn: Duration,
}

/// A connection attempt that failed, naming the address tried.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to {addr}")]
pub(super) struct ConnectError {
    pub(super) addr: SocketAddr,
    #[source]
    pub(super) source: io::Error,
}

/// A failed TLS handshake, naming the address.
#[derive(Debug, thiserror::Error)]
#[error("TLS handshake with {addr} failed")]
struct HandshakeError {
    addr: SocketAddr,
    #[source]
    source: io::Error,
}

impl TcpChecker {
    /// Prepares the resolver and, with `tls`, the client configuration and server name.
    pub(crate) fn new(
        probe: &ProbeName,
        spec: &TcpSpec,
        timeout: Duration,
        dns_timeout: Duration,
        toolkit: &Toolkit,
    ) -> Result<Self, SetupError> {
        let tls_error = |message: String| SetupError::Tls {
            probe: probe.clone(),
            message,
        };
        let tls = if spec.tls {
            let config = toolkit
                .tls_config(spec.tls_verify, false)
                .map_err(|e| tls_error(e.to_string()))?;
            let server_name = ServerName::try_from(spec.host.as_str())
                .map_err(|e| {
                    tls_error(format!(
                        "{:?} is not a valid TLS server name: {e}",
                        spec.host
                    ))
                })?
                .to_owned();
            Some(TlsSetup {
                connector: TlsConnector::from(config),
                server_name,
                cert_expiry_warn: spec.cert_expiry_warn,
            })
        } else {
            None
        };
        Ok(TcpChecker {
            endpoint: Endpoint::new(&spec.host, spec.port),
            resolver: spec
                .dns_server
                .map(|server| HostResolver::new(server, dns_timeout)),
            tls,
            send: spec.send.as_ref().map(|s| s.clone().into_bytes()),
            expect: spec.expect.clone(),
            timeout,
        })
    }

    /// Connects (and shakes hands), then runs the send/expect exchange. `deadline` is when the
    /// probe's timeout ends the check: the steps that can tell more than "timeout" about a
    /// check cut short (a hung system resolver, a peer that said something else) stop there
    /// by themselves.
    pub(crate) async fn check(&self, deadline: Instant) -> Observation {
        let lookup = Lookup {
            resolver: self.resolver.as_ref(),
            deadline: Some((deadline, self.timeout)),
        };
        let connected = self.endpoint.connect(lookup).await;
        let (connection, addr) = match connected {
            Ok(connected) => connected,
            Err(failure) => return failure.into(),
        };
        if self.tls.is_none() && self.send.is_none() && self.expect.is_none() {
            // A plain connect check is done: closing needs no event loop.
            return Observation::passed(None);
        }
        // On the heap: a TLS handshake in flight takes kilobytes that a plain connect check
        // should not allocate.
        Box::pin(self.converse_on(connection, addr, deadline)).await
    }

    /// The part after connecting: TLS handshake and send/expect.
    async fn converse_on(
        &self,
        connection: Connection,
        addr: SocketAddr,
        deadline: Instant,
    ) -> Observation {
        let stream = match connection.into_stream() {
            Ok(stream) => stream,
            Err(source) => return Failure::from_error(&ConnectError { addr, source }).into(),
        };
        let Some(tls) = &self.tls else {
            return observe(self.converse(stream, deadline).await, None);
        };
        let stream = match tls.connector.connect(tls.server_name.clone(), stream).await {
            Ok(stream) => stream,
            Err(source) => return Failure::from_error(&HandshakeError { addr, source }).into(),
        };
        let cert = leaf_status(&stream, tls.cert_expiry_warn);
        observe(self.converse(stream, deadline).await, cert)
    }

    /// Sends `send`, then reads until `expect` shows up, the peer closes, [`EXPECT_LIMIT`]
    /// bytes have come without it, or `deadline` passes. However long the peer pauses, the
    /// answer counts if it comes in time, as it would for a real client.
    ///
    /// A peer that said something else and keeps the connection open until the deadline
    /// fails as `assertion` with what it said: it answered, wrongly, and the detail shows
    /// how. Only a peer that said nothing at all fails as `timeout`.
    async fn converse<S>(&self, mut stream: S, deadline: Instant) -> Result<(), Failure>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        if let Some(send) = &self.send {
            stream
                .write_all(send)
                .await
                .map_err(|e| Failure::from_error(&e))?;
            stream.flush().await.map_err(|e| Failure::from_error(&e))?;
        }
        let Some(expect) = &self.expect else {
            return Ok(());
        };
        let needle = expect.as_bytes();
        if needle.is_empty() {
            return Ok(());
        }
        let mut received = Vec::new();
        // Where the expected text may still begin: what came before was searched already.
        let mut unsearched = 0;
        loop {
            let room = EXPECT_LIMIT.saturating_sub(received.len()).min(READ_CHUNK);
            if room == 0 {
                let limit = EXPECT_LIMIT / 1024;
                return Err(wrong_answer(
                    needle,
                    &received,
                    &format!("not in the first {limit} KiB"),
                ));
            }
            let filled = received.len();
            received.resize(filled + room, 0);
            let read =
                tokio::time::timeout_at(deadline, stream.read(&mut received[filled..])).await;
            let got = match read {
                Ok(Ok(n)) => n,
                _ => 0,
            };
            received.truncate(filled + got);
            match read {
                Err(_) => return Err(self.cut_short(needle, &received)),
                Ok(Ok(0)) => return Err(wrong_answer(needle, &received, "then the peer closed")),
                Ok(Ok(_)) => {}
                // A TLS peer that hangs up without close_notify has still said what it said.
                Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(wrong_answer(needle, &received, "then the peer closed"));
                }
                Ok(Err(e)) => return Err(Failure::from_error(&e)),
            }
            if contains(&received[unsearched..], needle) {
                return Ok(());
            }
            unsearched = received.len().saturating_sub(needle.len() - 1);
        }
    }

    /// The failure of an exchange the probe's timeout ended: `timeout` if the peer said
    /// nothing, `assertion` (with what it said) otherwise.
    fn cut_short(&self, needle: &[u8], received: &[u8]) -> Failure {
        let within = humantime::format_duration(self.timeout);
        if received.is_empty() {
            return Failure::new(ErrorClass::Timeout, format!("no answer within {within}"));
        }
        wrong_answer(
            needle,
            received,
            &format!("and nothing more within {within}"),
        )
    }
}

/// The failure of an answer without the expected text; `then` says how the exchange ended.
fn wrong_answer(needle: &[u8], received: &[u8], then: &str) -> Failure {
    Failure::new(
        ErrorClass::Assertion,
        format!(
            "expected {}, received {} {then}",
            excerpt(needle),
            excerpt(received)
        ),
    )
}

/// The observation of a finished exchange, with the certificate seen before it.
fn observe(result: Result<(), Failure>, cert: Option<CertStatus>) -> Observation {
    match result {
        Ok(()) => Observation::passed(cert),
        Err(failure) => Observation::failed(failure, cert),
    }
}

/// Where a check connects: an IP literal, known at setup, or a name looked up per check.
pub(super) enum Endpoint {
    /// The address itself: nothing to parse or look up per check.
    Addr(SocketAddr),
    /// A host name, resolved through the probe's DNS server or the system resolver.
    Name { host: Box<str>, port: u16 },
}

impl Endpoint {
    /// `host` (without brackets) and `port`.
    pub(super) fn new(host: &str, port: u16) -> Self {
        match host.parse::<IpAddr>() {
            Ok(ip) => Endpoint::Addr(SocketAddr::new(ip, port)),
            Err(_) => Endpoint::Name {
                host: host.into(),
                port,
            },
        }
    }

    /// Resolves a name as `lookup` says, then opens a new connection, trying each address in
    /// turn.
    pub(super) async fn connect(
        &self,
        lookup: Lookup<'_>,
    ) -> Result<(Connection, SocketAddr), Failure> {
        let connected = match self {
            Endpoint::Addr(addr) => connect(&[*addr]).await,
            Endpoint::Name { host, port } => connect(&resolve(host, *port, lookup).await?).await,
        };
        connected.map_err(|e| Failure::from_error(&e))
    }
}

/// How a check looks up a host name.
pub(super) struct Lookup<'a> {
    /// The probe's own DNS server; `None` for the system resolver.
    pub(super) resolver: Option<&'a HostResolver>,
    /// When the check's timeout ends it, and that timeout. The system resolver (getaddrinfo
    /// on a blocking thread) cannot be cancelled and may hang far longer than any timeout
    /// (`options timeout:30 attempts:3` in `/etc/resolv.conf`); a lookup still pending here
    /// fails as `dns`, which is what went wrong, rather than the check's generic `timeout`.
    /// The thread is left to finish on its own.
    pub(super) deadline: Option<(Instant, Duration)>,
}

/// The addresses of the name `host`, from the probe's DNS server or the system resolver.
async fn resolve(host: &str, port: u16, lookup: Lookup<'_>) -> Result<Vec<SocketAddr>, Failure> {
    let addrs: Vec<SocketAddr> = match lookup.resolver {
        // On the heap: a lookup in flight takes kilobytes that a check of an IP literal
        // should not allocate.
        Some(resolver) => Box::pin(resolver.lookup_ip(host))
            .await
            .map_err(|error| Failure::from_error(&error))?
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect(),
        None => {
            let system = Box::pin(tokio::net::lookup_host((host, port)));
            let looked_up = match lookup.deadline {
                Some((deadline, timeout)) => tokio::time::timeout_at(deadline, system)
                    .await
                    .map_err(|_| {
                        Failure::new(
                            ErrorClass::Dns,
                            format!(
                                "cannot resolve {host}: no answer from the system resolver within {}",
                                humantime::format_duration(timeout)
                            ),
                        )
                    })?,
                None => system.await,
            };
            // The system resolver's errors are plain io::Errors that say nothing about DNS,
            // so they are classified here rather than by their kind.
            looked_up
                .map_err(|error| {
                    Failure::new(ErrorClass::Dns, format!("cannot resolve {host}: {error}"))
                })?
                .collect()
        }
    };
    if addrs.is_empty() {
        return Err(Failure::new(
            ErrorClass::Dns,
            format!("{host} has no addresses"),
        ));
    }
    Ok(addrs)
}

/// Tries each address in turn; the last error stands for all when none answers.
pub(super) async fn connect(
    addrs: &[SocketAddr],
) -> Result<(Connection, SocketAddr), ConnectError> {
    let mut last = None;
    for &addr in addrs {
        match connect_one(addr).await {
            Ok(stream) => return Ok((stream, addr)),
            Err(source) => last = Some(ConnectError { addr, source }),
        }
    }
    Err(last.unwrap_or_else(|| ConnectError {
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        source: io::Error::new(io::ErrorKind::AddrNotAvailable, "no address to connect to"),
    }))
}

/// A connected socket; registered with the event loop only if it had to wait.
pub(super) enum Connection {
    /// Connected by the time `connect` returned.
    Ready(Socket),
    /// Connected after waiting for the event loop.
    Waited(TcpStream),
}

impl Connection {
    /// The socket as a tokio stream, for TLS, send/expect and HTTP.
    pub(super) fn into_stream(self) -> io::Result<TcpStream> {
        match self {
            Connection::Ready(socket) => TcpStream::from_std(socket.into()),
            Connection::Waited(stream) => Ok(stream),
        }
    }
}

/// Opens a new connection to `addr`, as `TcpStream::connect` does, but without the event loop
/// when it is not needed: on loopback (and to a refusing host) the handshake is over before a
/// non-blocking `connect` returns, and registering the socket, waiting for its wakeup and
/// deregistering it would cost more than the connection itself. Cheap calls tell: a peer
/// means connected (one call, the common case); otherwise a pending error means refused, and
/// anything else waits as usual.
async fn connect_one(addr: SocketAddr) -> io::Result<Connection> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking(),
        Some(Protocol::TCP),
    )?;
    match socket.connect(&addr.into()) {
        Ok(()) => return Ok(Connection::Ready(socket)),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    if socket.peer_addr().is_ok() {
        return Ok(Connection::Ready(socket));
    }
    if let Some(e) = socket.take_error()? {
        return Err(e);
    }
    let stream = TcpStream::from_std(socket.into())?;
    stream.writable().await?;
    if let Some(e) = stream.take_error()? {
        return Err(e);
    }
    Ok(Connection::Waited(stream))
}

/// The expiry of the leaf certificate the server presented.
fn leaf_status(
    stream: &tokio_rustls::client::TlsStream<TcpStream>,
    warn: Duration,
) -> Option<CertStatus> {
    let leaf = stream.get_ref().1.peer_certificates()?.first()?;
    tls::cert_status(leaf, warn)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// Peer- or user-supplied bytes as a short quoted, escaped, single-line excerpt for a failure
/// detail: `"+PONG"`, `"HTTP/1.1 400 Bad Request\r\nContent-Length: 0…"`.
pub(super) fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                escaped.push('\\');
                escaped.push(c);
            }
            c if c.is_control() => escaped.extend(c.escape_debug()),
            c => escaped.push(c),
        }
    }
    let mut chars = escaped.chars();
    let short: String = chars.by_ref().take(EXCERPT_CHARS).collect();
    if chars.next().is_some() {
        format!("\"{short}…\"")
    } else {
        format!("\"{short}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_escaped_and_short() {
        assert_eq!(excerpt(b"+PONG\r\n"), r#""+PONG\r\n""#);
        let long = excerpt(&[b'x'; 100]);
        assert_eq!(long.chars().count(), EXCERPT_CHARS + 3);
        assert!(long.ends_with("…\""));
        assert_eq!(excerpt(&[0xff, b'a']), "\"\u{fffd}a\"");
        assert_eq!(excerpt(b"'q' \"d\" \\ \x1b"), r#""'q' \"d\" \\ \u{1b}""#);
    }

    #[test]
    fn contains_finds_text_across_chunk_boundaries() {
        assert!(contains(b"xx+PO", b"") && contains(b"a+PONG", b"+PONG"));
        assert!(!contains(b"+PON", b"+PONG"));
    }

    /// A checker that only expects `expect` (no send), with a 4 s timeout.
    fn expecting(expect: &str) -> TcpChecker {
        TcpChecker {
            endpoint: Endpoint::new("127.0.0.1", 9),
            resolver: None,
            tls: None,
            send: None,
            expect: Some(expect.to_owned()),
            timeout: Duration::from_secs(4),
        }
    }

    /// Runs `converse` against a peer that writes `pieces` (each after its pause) and then
    /// keeps the connection open; returns the result and when it came, on the paused clock.
    async fn converse_with(
        checker: &TcpChecker,
        pieces: &'static [(u64, &'static str)],
    ) -> (Result<(), Failure>, Duration) {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        let peer = tokio::spawn(async move {
            for (pause_ms, text) in pieces {
                tokio::time::sleep(Duration::from_millis(*pause_ms)).await;
                server.write_all(text.as_bytes()).await.unwrap();
            }
            std::future::pending::<()>().await;
        });
        let started = Instant::now();
        let deadline = started + checker.timeout;
        let result = checker.converse(client, deadline).await;
        peer.abort();
        (result, started.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_after_a_long_pause_still_counts() {
        let checker = expecting("220 ready");
        let pieces = &[(0, "220-hello\r\n"), (3_000, "220 rea"), (500, "dy\r\n")];
        let (result, at) = converse_with(&checker, pieces).await;
        assert_eq!(result, Ok(()));
        assert_eq!(at, Duration::from_millis(3_500));
    }

    #[tokio::test(start_paused = true)]
    async fn a_wrong_answer_on_an_open_connection_is_an_assertion_at_the_timeout() {
        let checker = expecting("+PONG");
        let (result, at) = converse_with(&checker, &[(0, "-ERR busy\r\n")]).await;
        let failure = result.unwrap_err();
        assert_eq!(failure.class, ErrorClass::Assertion);
        assert_eq!(
            failure.detail,
            r#"expected "+PONG", received "-ERR busy\r\n" and nothing more within 4s"#
        );
        assert_eq!(at, Duration::from_secs(4));
    }

    #[tokio::test(start_paused = true)]
    async fn silence_is_a_timeout() {
        let checker = expecting("+PONG");
        let (result, at) = converse_with(&checker, &[]).await;
        let failure = result.unwrap_err();
        assert_eq!(failure.class, ErrorClass::Timeout);
        assert_eq!(failure.detail, "no answer within 4s");
        assert_eq!(at, Duration::from_secs(4));
    }

    #[tokio::test(start_paused = true)]
    async fn reading_stops_at_the_limit() {
        let checker = expecting("+PONG");
        let (client, mut server) = tokio::io::duplex(EXPECT_LIMIT * 2);
        server
            .write_all(&vec![b'x'; EXPECT_LIMIT + 10])
            .await
            .unwrap();
        let started = Instant::now();
        let failure = checker
            .converse(client, started + checker.timeout)
            .await
            .unwrap_err();
        assert_eq!(failure.class, ErrorClass::Assertion);
        assert!(
            failure.detail.ends_with("not in the first 64 KiB"),
            "{}",
            failure.detail
        );
        assert_eq!(started.elapsed(), Duration::ZERO);
        // The text split across two reads is found.
        let (client, mut server) = tokio::io::duplex(64);
        server.write_all(b"xx+PO").await.unwrap();
        let reading = tokio::spawn(async move {
            checker
                .converse(client, started + Duration::from_secs(4))
                .await
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        server.write_all(b"NG").await.unwrap();
        assert_eq!(reading.await.unwrap(), Ok(()));
    }

    /// A loopback listener that never accepts on its own, with room for one connection
    /// in its accept queue.
    fn full_queue_listener() -> (std::net::TcpListener, SocketAddr) {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
        socket
            .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .unwrap();
        socket.listen(0).unwrap();
        let listener = std::net::TcpListener::from(socket);
        let addr = listener.local_addr().unwrap();
        (listener, addr)
    }

    #[tokio::test]
    async fn loopback_connects_without_the_event_loop_and_refusals_fail_at_once() {
        let (_listener, addr) = full_queue_listener();
        assert!(matches!(connect_one(addr).await, Ok(Connection::Ready(_))));
        let closed = {
            let (listener, addr) = full_queue_listener();
            drop(listener);
            addr
        };
        let refused = connect_one(closed).await.err().unwrap();
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
    }

    #[tokio::test]
    async fn a_connect_that_must_wait_completes_through_the_event_loop() {
        let (listener, addr) = full_queue_listener();
        // The first connection fills the accept queue, so the listener drops the next SYN:
        // that connect is still under way when `connect` returns.
        let first = connect_one(addr).await.unwrap();
        let second = tokio::spawn(async move { connect_one(addr).await });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!second.is_finished());
        // Room again: the client's resent SYN (after about a second) gets through.
        let accepted = listener.accept().unwrap();
        let second = tokio::time::timeout(Duration::from_secs(10), second)
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(second, Ok(Connection::Waited(_))));
        drop((first, accepted));
    }
}
