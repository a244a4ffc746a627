//! A tiny hand-written HTTP/1.1 server on loopback, with routes that misbehave on purpose.
//!
//! Written by hand rather than with a framework so each route can do what real servers do
//! wrong: never answer, stream forever, redirect to itself. It counts TCP connections and
//! requests (to prove a probe opens a fresh connection per check) and stops when dropped.
//!
//! Routes:
//! - `/ok`: 200 `all ok`
//! - `/status/{code}`: that status, body `status {code}`
//! - `/slow/{ms}`: 200 `slow ok` after `ms` milliseconds
//! - `/hang`: reads the request and never answers
//! - `/endless`: 200 with a chunked body that never ends
//! - `/big`: 200 with `Content-Length: 1073741824`, streamed for as long as the client reads
//! - `/redirect`: 302 to `/ok`; `/redirect-loop`: 302 to itself
//! - `/redirect-to/{status}/{location}`: that status with the percent-decoded `location`
//! - `/chain/{n}`: 302 to `/chain/{n-1}`; `/chain/0` is 200 `end of chain`
//! - `/chunked/{text}`: 200 with the percent-decoded `text` in chunks of 3 bytes (the first
//!   with a chunk extension), then a trailer
//! - `/until-close/{text}`: 200 without a length: the percent-decoded `text`, then closes
//! - `/interim`: a 103 Early Hints head, then 200 `after hints`
//! - `/head-only`: 200 announcing `Content-Length: 1000`, then nothing, connection kept open
//!   (only a HEAD request, which has no body, is complete)
//! - `/echo`: 200 with `{METHOD} {path}`, one `name: value` line per request header (names
//!   lowercase, in arrival order), a blank line, then the request body
//! - `/body/{text}`: 200 with the percent-decoded `text`
//! - `/padded/{n}/{text}`: 200 with `n` bytes of `x`, then the percent-decoded `text`
//! - `/hosts`: 200 `host lines: {n}; host: {first value}`, counting the request's `Host` lines
//! - `/many-headers/{n}`: 200 `many ok` after `n` extra header fields
//! - `/big-head/{kib}`: 200 `big head ok` after a head of about `kib` KiB (4 KB fields)
//! - `/folded`: 200 `folded ok` with an obs-folded header field
//! - `/length-list/{list}`: 200 `hello world!` (12 bytes) with the percent-decoded `list` as
//!   its `Content-Length`
//! - `/lf-chunked/{text}`: `/chunked/{text}` with bare LF line ends in the framing
//! - `/chunked-cut/{text}`: the chunks of `text`, then a hang-up before the last chunk
//! - anything else: 404 `not found`
//!
//! Every hang-up (`/until-close`, `/truncated`, `/chunked-cut`) drops the connection without a
//! TLS `close_notify`, as many servers do.

// Each test file uses a different part of the support kit.
#![allow(dead_code)]

use std::{
    io,
    net::{Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use rustls::ServerConfig;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpListener,
    task::{JoinHandle, JoinSet},
};
use tokio_rustls::TlsAcceptor;

/// Largest request head the server accepts; larger requests are dropped.
const MAX_HEAD: usize = 64 * 1024;
/// The size `/big` announces: 1 GiB.
const BIG: u64 = 1 << 30;
/// Bytes per write for streamed bodies.
const BLOCK: usize = 64 * 1024;

/// How to start a [`TestHttp`].
#[derive(Clone, Default)]
pub struct HttpOptions {
    /// Serve HTTPS with this configuration.
    pub tls: Option<Arc<ServerConfig>>,
    /// Listen on `[::1]` instead of `127.0.0.1`.
    pub ipv6: bool,
}

impl HttpOptions {
    /// Plain HTTP on 127.0.0.1.
    pub fn plain() -> Self {
        Self::default()
    }

    /// HTTPS on 127.0.0.1 with `config` (see `support::tls::TestCert::server_config`).
    pub fn tls(config: Arc<ServerConfig>) -> Self {
        HttpOptions {
            tls: Some(config),
            ..Self::default()
        }
    }

    /// The same, on `[::1]`.
    pub fn ipv6(self) -> Self {
        HttpOptions { ipv6: true, ..self }
    }
}

/// A running test server; stops (with every open connection) when dropped.
pub struct TestHttp {
    /// Where it listens.
    pub addr: SocketAddr,
    scheme: &'static str,
    counters: Arc<Counters>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct Counters {
    connections: AtomicUsize,
    requests: AtomicUsize,
}

/// Starts a server; panics if the address cannot be bound.
pub async fn start(opts: HttpOptions) -> TestHttp {
    try_start(opts).await.expect("bind the test HTTP server")
}

/// Starts a server, or says why it could not bind (for example no IPv6 on this host, which an
/// IPv6 test may treat as a reason to skip).
pub async fn try_start(opts: HttpOptions) -> io::Result<TestHttp> {
    let bind: SocketAddr = if opts.ipv6 {
        (Ipv6Addr::LOCALHOST, 0).into()
    } else {
        (Ipv4Addr::LOCALHOST, 0).into()
    };
    let listener = TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let counters = Arc::new(Counters::default());
    let scheme = if opts.tls.is_some() { "https" } else { "http" };
    let acceptor = opts.tls.map(TlsAcceptor::from);
    let task = tokio::spawn(serve(listener, acceptor, counters.clone()));
    Ok(TestHttp {
        addr,
        scheme,
        counters,
        task,
    })
}

impl TestHttp {
    /// The URL of `path` (which starts with `/`) on this server, with the IP literal as host so
    /// nothing is resolved: `http://127.0.0.1:PORT/ok`, `https://[::1]:PORT/ok`.
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.counters.connections.load(Ordering::SeqCst)
    }

    /// Complete request heads read so far (over all connections).
    pub fn requests(&self) -> usize {
        self.counters.requests.load(Ordering::SeqCst)
    }
}

impl Drop for TestHttp {
    fn drop(&mut self) {
        // The connection tasks live in the accept task's JoinSet and are aborted with it.
        self.task.abort();
    }
}

async fn serve(listener: TcpListener, acceptor: Option<TlsAcceptor>, counters: Arc<Counters>) {
    let mut connections = JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of descriptors or similar: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        counters.connections.fetch_add(1, Ordering::SeqCst);
        let acceptor = acceptor.clone();
        let counters = counters.clone();
        connections.spawn(async move {
            match acceptor {
                Some(acceptor) => {
                    // A client that rejects our certificate simply goes away.
                    if let Ok(stream) = acceptor.accept(stream).await {
                        handle(stream, &counters).await;
                    }
                }
                None => handle(stream, &counters).await,
            }
        });
        while connections.try_join_next().is_some() {}
    }
}

/// One parsed request.
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Serves requests on one connection until the client leaves (keep-alive, so a client that
/// reuses connections would be visible in the counters).
async fn handle<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, counters: &Counters) {
    let mut buffered = Vec::new();
    while let Some(request) = read_request(&mut stream, &mut buffered).await {
        counters.requests.fetch_add(1, Ordering::SeqCst);
        if respond(&mut stream, &request).await.is_err() {
            return;
        }
    }
}

/// Reads one request; `None` at EOF, on errors or on a malformed request.
async fn read_request<S: AsyncRead + Unpin>(
    stream: &mut S,
    buffered: &mut Vec<u8>,
) -> Option<Request> {
    let head_end = loop {
        if let Some(at) = find(buffered, b"\r\n\r\n") {
            break at;
        }
        if buffered.len() > MAX_HEAD {
            return None;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffered.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffered[..head_end]).into_owned();
    buffered.drain(..head_end + 4);

    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let path = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    while buffered.len() < length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffered.extend_from_slice(&chunk[..n]);
    }
    let body = buffered.drain(..length).collect();
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

async fn respond<S: AsyncWrite + Unpin>(stream: &mut S, request: &Request) -> io::Result<()> {
    let path = request.path.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["ok"] => reply(stream, 200, &[], b"all ok").await,
        ["status", code] => match code.parse::<u16>() {
            Ok(code) if (100..1000).contains(&code) => {
                reply(stream, code, &[], format!("status {code}").as_bytes()).await
            }
            _ => reply(stream, 400, &[], b"bad status code").await,
        },
        ["slow", ms] => {
            let ms = ms.parse().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            reply(stream, 200, &[], b"slow ok").await
        }
        ["hang"] => std::future::pending().await,
        ["endless"] => endless(stream).await,
        ["big"] => big(stream).await,
        ["truncated"] => truncated(stream).await,
        ["garbage"] => {
            stream.write_all(b"this is not HTTP\r\n\r\n").await?;
            Err(io::Error::other("closing after garbage on purpose"))
        }
        ["redirect"] => reply(stream, 302, &[("Location", "/ok")], b"").await,
        ["redirect-loop"] => reply(stream, 302, &[("Location", "/redirect-loop")], b"").await,
        ["redirect-to", code, location] => {
            let location = String::from_utf8_lossy(&percent_decode(location)).into_owned();
            let code = code.parse().unwrap_or(302);
            reply(stream, code, &[("Location", location.as_str())], b"").await
        }
        ["chunked", text] => {
            let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            for (i, piece) in percent_decode(text).chunks(3).enumerate() {
                let extension = if i == 0 { ";ext=1" } else { "" };
                out.extend_from_slice(format!("{:x}{extension}\r\n", piece.len()).as_bytes());
                out.extend_from_slice(piece);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\nX-Trailer: done\r\n\r\n");
            stream.write_all(&out).await?;
            stream.flush().await
        }
        ["until-close", text] => {
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
                .await?;
            stream.write_all(&percent_decode(text)).await?;
            stream.flush().await?;
            Err(io::Error::other("closing to end the body, on purpose"))
        }
        ["interim"] => {
            stream
                .write_all(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\n")
                .await?;
            reply(stream, 200, &[], b"after hints").await
        }
        ["head-only"] => {
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
                .await?;
            stream.flush().await?;
            std::future::pending().await
        }
        ["chain", n] => match n.parse::<u32>() {
            Ok(0) => reply(stream, 200, &[], b"end of chain").await,
            Ok(n) => {
                let next = format!("/chain/{}", n - 1);
                reply(stream, 302, &[("Location", next.as_str())], b"").await
            }
            Err(_) => reply(stream, 400, &[], b"bad chain length").await,
        },
        ["echo"] => {
            let mut text = format!("{} {}\n", request.method, request.path).into_bytes();
            for (name, value) in &request.headers {
                text.extend_from_slice(format!("{name}: {value}\n").as_bytes());
            }
            text.push(b'\n');
            text.extend_from_slice(&request.body);
            reply(stream, 200, &[("Content-Type", "text/plain")], &text).await
        }
        ["body", text] => reply(stream, 200, &[], &percent_decode(text)).await,
        ["hosts"] => {
            let hosts: Vec<&str> = request
                .headers
                .iter()
                .filter(|(name, _)| name == "host")
                .map(|(_, value)| value.as_str())
                .collect();
            let text = format!(
                "host lines: {}; host: {}",
                hosts.len(),
                hosts.first().unwrap_or(&"")
            );
            reply(stream, 200, &[], text.as_bytes()).await
        }
        ["many-headers", n] => {
            let names: Vec<String> = (0..n.parse().unwrap_or(0))
                .map(|i| format!("X-Field-{i}"))
                .collect();
            let headers: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
            reply(stream, 200, &headers, b"many ok").await
        }
        ["big-head", kib] => {
            let value = "v".repeat(4000);
            let names: Vec<String> = (0..kib.parse::<usize>().unwrap_or(0).div_ceil(4))
                .map(|i| format!("X-Pad-{i}"))
                .collect();
            let headers: Vec<(&str, &str)> =
                names.iter().map(|n| (n.as_str(), value.as_str())).collect();
            reply(stream, 200, &headers, b"big head ok").await
        }
        ["folded"] => {
            stream
                .write_all(
                    b"HTTP/1.1 200 OK\r\nX-Folded: first\r\n  second\r\n\tthird\r\n\
                      Content-Length: 9\r\n\r\nfolded ok",
                )
                .await?;
            stream.flush().await
        }
        ["length-list", list] => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\nhello world!",
                String::from_utf8_lossy(&percent_decode(list))
            );
            stream.write_all(head.as_bytes()).await?;
            stream.flush().await
        }
        ["lf-chunked", text] => {
            let mut out = b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n".to_vec();
            for piece in percent_decode(text).chunks(3) {
                out.extend_from_slice(format!("{:x}\n", piece.len()).as_bytes());
                out.extend_from_slice(piece);
                out.extend_from_slice(b"\n");
            }
            out.extend_from_slice(b"0\n\n");
            stream.write_all(&out).await?;
            stream.flush().await
        }
        ["chunked-cut", text] => {
            let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            for piece in percent_decode(text).chunks(3) {
                out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                out.extend_from_slice(piece);
                out.extend_from_slice(b"\r\n");
            }
            stream.write_all(&out).await?;
            stream.flush().await?;
            Err(io::Error::other("closing before the last chunk on purpose"))
        }
        ["padded", n, text] => {
            let mut body = vec![b'x'; n.parse().unwrap_or(0)];
            body.extend_from_slice(&percent_decode(text));
            reply(stream, 200, &[], &body).await
        }
        _ => reply(stream, 404, &[], b"not found").await,
    }
}

async fn reply<S: AsyncWrite + Unpin>(
    stream: &mut S,
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    // 1xx, 204 and 304 carry no body and no length.
    let bodiless = status < 200 || status == 204 || status == 304;
    if !bodiless {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    if !bodiless {
        stream.write_all(body).await?;
    }
    stream.flush().await
}

/// Promises 1,000 bytes, sends 10, then hangs up: a connection lost mid-answer.
async fn truncated<S: AsyncWrite + Unpin>(stream: &mut S) -> io::Result<()> {
    stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
        .await?;
    stream.flush().await?;
    Err(io::Error::other("closing mid-body on purpose"))
}

/// A chunked body that never ends; returns when the client goes away.
async fn endless<S: AsyncWrite + Unpin>(stream: &mut S) -> io::Result<()> {
    stream
        .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        .await?;
    let mut chunk = format!("{BLOCK:x}\r\n").into_bytes();
    chunk.extend(std::iter::repeat_n(b'x', BLOCK));
    chunk.extend_from_slice(b"\r\n");
    loop {
        stream.write_all(&chunk).await?;
    }
}

/// A 1 GiB body, written for as long as the client reads.
async fn big<S: AsyncWrite + Unpin>(stream: &mut S) -> io::Result<()> {
    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {BIG}\r\n\r\n");
    stream.write_all(head.as_bytes()).await?;
    let block = vec![b'x'; BLOCK];
    let mut left = BIG;
    while left > 0 {
        let n = usize::try_from(left).map_or(BLOCK, |left| left.min(BLOCK));
        stream.write_all(&block[..n]).await?;
        left -= n as u64;
    }
    stream.flush().await
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}

/// Decodes `%XX` escapes; anything malformed is kept as written.
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
