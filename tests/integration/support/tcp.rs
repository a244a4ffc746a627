//! Loopback TCP peers for the TCP probe: one that never speaks, a Redis-like `PING → +PONG`
//! responder, a line echo, a banner sender (optionally over TLS), a peer that talks with pauses,
//! one that talks without end, and a port nobody listens on.
//! Each server counts connections and stops, with its connections, when dropped.

// Each test file uses a different part of the support kit.
#![allow(dead_code)]

use std::{
    net::{Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use rustls::ServerConfig;
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    task::{JoinHandle, JoinSet},
};
use tokio_rustls::TlsAcceptor;

/// What the server does with each connection.
#[derive(Clone, Debug)]
pub enum Behavior {
    /// Accepts and keeps the connection open without reading or writing (not even a TLS
    /// handshake): the client waits until its timeout.
    Hang,
    /// Answers each line `PING` with `+PONG\r\n`, `QUIT` with `+OK\r\n` and a close, anything
    /// else with `-ERR unknown command '<line>'\r\n`.
    Pong,
    /// Writes each received line back.
    Echo,
    /// Writes this text as soon as the connection (and handshake) is up, then closes.
    Greet(String),
    /// Writes each piece after its pause (counted from the previous piece), then keeps the
    /// connection open without reading until the server is dropped.
    Drip(Vec<(Duration, String)>),
    /// Writes this text over and over until the client goes away.
    Flood(String),
}

/// A running test server.
pub struct TestTcp {
    /// Where it listens.
    pub addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl TestTcp {
    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// The port, for a probe's `port`.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for TestTcp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a server on 127.0.0.1 (or `[::1]` with `ipv6`), speaking TLS when `tls` is given.
pub async fn start(behavior: Behavior, tls: Option<Arc<ServerConfig>>, ipv6: bool) -> TestTcp {
    let bind: SocketAddr = if ipv6 {
        (Ipv6Addr::LOCALHOST, 0).into()
    } else {
        (Ipv4Addr::LOCALHOST, 0).into()
    };
    let listener = TcpListener::bind(bind)
        .await
        .expect("bind the test TCP server");
    let addr = listener.local_addr().expect("local address");
    let connections = Arc::new(AtomicUsize::new(0));
    let task = tokio::spawn(serve(
        listener,
        behavior,
        tls.map(TlsAcceptor::from),
        connections.clone(),
    ));
    TestTcp {
        addr,
        connections,
        task,
    }
}

/// A peer that accepts and then says nothing.
pub async fn hang() -> TestTcp {
    start(Behavior::Hang, None, false).await
}

/// A `PING → +PONG` responder.
pub async fn pong() -> TestTcp {
    start(Behavior::Pong, None, false).await
}

/// A `PING → +PONG` responder behind TLS.
pub async fn pong_tls(config: Arc<ServerConfig>) -> TestTcp {
    start(Behavior::Pong, Some(config), false).await
}

/// A line echo.
pub async fn echo() -> TestTcp {
    start(Behavior::Echo, None, false).await
}

/// A peer that sends `text` on connect, like an SMTP or SSH banner.
pub async fn greet(text: &str) -> TestTcp {
    start(Behavior::Greet(text.to_owned()), None, false).await
}

/// A peer that writes each piece after its pause, then keeps the connection open.
pub async fn drip(pieces: &[(Duration, &str)]) -> TestTcp {
    let pieces = pieces
        .iter()
        .map(|(pause, text)| (*pause, (*text).to_owned()))
        .collect();
    start(Behavior::Drip(pieces), None, false).await
}

/// A peer that repeats `text` for as long as the client reads.
pub async fn flood(text: &str) -> TestTcp {
    start(Behavior::Flood(text.to_owned()), None, false).await
}

/// A loopback address whose connections are refused, for as long as the tests run: the port
/// is bound by a socket that never listens and is never closed, so no other test (and no
/// daemon a test starts) can be given the same port meanwhile — a throwaway listener freed at
/// once could be, and its "refused" probe then found a server there.
pub fn refused_addr() -> SocketAddr {
    static HELD: std::sync::Mutex<Vec<socket2::Socket>> = std::sync::Mutex::new(Vec::new());
    let (addr, socket) = refusing_socket();
    HELD.lock().unwrap_or_else(|p| p.into_inner()).push(socket);
    addr
}

/// A refused loopback address that a test will serve later: it stays refused (and its port
/// taken) until [`RefusedPort::release`] hands the port over.
pub struct RefusedPort {
    /// The address.
    pub addr: SocketAddr,
    socket: socket2::Socket,
}

impl RefusedPort {
    /// Refused from now on.
    pub fn new() -> RefusedPort {
        let (addr, socket) = refusing_socket();
        RefusedPort { addr, socket }
    }

    /// Frees the port for the test's own listener (bind it at once).
    pub fn release(self) -> SocketAddr {
        drop(self.socket);
        self.addr
    }
}

/// A socket bound to a free loopback port that never listens: connecting is refused.
fn refusing_socket() -> (SocketAddr, socket2::Socket) {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("a socket");
    socket
        .bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
        .expect("bind a port that never listens");
    let addr = socket
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .expect("local address");
    (addr, socket)
}

async fn serve(
    listener: TcpListener,
    behavior: Behavior,
    acceptor: Option<TlsAcceptor>,
    connections: Arc<AtomicUsize>,
) {
    let mut tasks = JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        connections.fetch_add(1, Ordering::SeqCst);
        let behavior = behavior.clone();
        let acceptor = acceptor.clone();
        tasks.spawn(async move { connection(stream, behavior, acceptor).await });
        while tasks.try_join_next().is_some() {}
    }
}

async fn connection(stream: TcpStream, behavior: Behavior, acceptor: Option<TlsAcceptor>) {
    if let Behavior::Hang = behavior {
        // Keep the socket open (and unread) until the server is dropped.
        let _held = stream;
        return std::future::pending().await;
    }
    match acceptor {
        Some(acceptor) => {
            if let Ok(stream) = acceptor.accept(stream).await {
                talk(stream, &behavior).await;
            }
        }
        None => talk(stream, &behavior).await,
    }
}

async fn talk<S: AsyncRead + AsyncWrite + Unpin>(stream: S, behavior: &Behavior) {
    let mut stream = BufReader::new(stream);
    match behavior {
        Behavior::Greet(text) => {
            let _ = stream.write_all(text.as_bytes()).await;
            let _ = stream.shutdown().await;
            return;
        }
        Behavior::Drip(pieces) => {
            for (pause, text) in pieces {
                tokio::time::sleep(*pause).await;
                if stream.write_all(text.as_bytes()).await.is_err() || stream.flush().await.is_err()
                {
                    return;
                }
            }
            let _held = stream;
            return std::future::pending().await;
        }
        Behavior::Flood(text) => {
            while stream.write_all(text.as_bytes()).await.is_ok() {}
            return;
        }
        _ => {}
    }
    let mut line = String::new();
    loop {
        line.clear();
        match stream.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let command = line.trim_end_matches(['\r', '\n']);
        let answer = match behavior {
            Behavior::Echo => line.clone(),
            _ if command.eq_ignore_ascii_case("PING") => "+PONG\r\n".to_owned(),
            _ if command.eq_ignore_ascii_case("QUIT") => "+OK\r\n".to_owned(),
            _ => format!("-ERR unknown command '{command}'\r\n"),
        };
        if stream.write_all(answer.as_bytes()).await.is_err() || stream.flush().await.is_err() {
            return;
        }
        if command.eq_ignore_ascii_case("QUIT") && !matches!(behavior, Behavior::Echo) {
            let _ = stream.shutdown().await;
            return;
        }
    }
}
