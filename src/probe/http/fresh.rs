//! One plain `http://` exchange on a new connection: the request written in one piece, the
//! response head parsed by `httparse`, the body framed by hand (RFC 9112 §6).
//!
//! Why not reqwest or hyper here: a check that opens a connection, sends one request and closes
//! it needs none of a general client's machinery, and at 1,000 checks a second that machinery
//! was most of the user CPU of an HTTP check (issue 7). reqwest added a pool checkout, a stack
//! of connector services and a spawned task per connection; hyper alone still builds a header
//! map of every response, a channel pair between request and connection, and a dispatcher
//! state machine (callgrind: about 25,000 instructions per check, twice a whole TCP check).
//! What a check needs of the response is its status, its `Location` and its body's framing,
//! so that is all this reads; `httparse` does the parsing, which is the part worth sharing.
//!
//! `https://` and `reuse_connection` stay with reqwest (see the parent module).

use std::{io, net::SocketAddr};

use bytes::Bytes;
use reqwest::{
    Method, StatusCode, Url,
    header::{ACCEPT, HeaderMap, USER_AGENT},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use super::{BodyChunks, USER_AGENT as DEFAULT_USER_AGENT};
use crate::probe::{Failure, dns::HostResolver, tcp};

/// Most headers a response head may have.
const MAX_HEADERS: usize = 100;
/// Largest response head accepted; real ones are well under 8 KiB.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 8 * 1024;

/// Why an exchange failed once the connection was up. [`classify`](crate::probe::classify)
/// tells them apart: no valid answer is `protocol`; a failed read or write, or a body cut
/// short, is `io` (unless the I/O error's kind says more, such as a timeout).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExchangeError {
    /// No valid response head came back.
    #[error("no valid HTTP response from {addr}: {reason}")]
    Response {
        /// The server's address.
        addr: SocketAddr,
        /// What was wrong.
        reason: String,
    },
    /// The request could not be written, or the response not read.
    #[error("connection to {addr} failed")]
    Io {
        /// The server's address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The body ended before its framing said it would, or its chunks were malformed.
    #[error("the response body from {addr} is cut short or malformed: {reason}")]
    Body {
        /// The server's address.
        addr: SocketAddr,
        /// What was wrong.
        reason: String,
    },
}

/// Where one request goes, prepared once per URL: the first request of every check uses it.
pub(super) struct PlainTarget {
    endpoint: tcp::Endpoint,
    /// The request target in origin form: `/path?query`.
    origin: Box<str>,
    /// The `Host` header: the URL's host, and its port unless it is the default one.
    authority: Box<str>,
}

/// What a check needs of a response head.
pub(super) struct Head {
    pub status: StatusCode,
    pub location: Option<String>,
}

impl PlainTarget {
    /// The target for `url` (an `http://` URL); `None` when it has no host or port, which the
    /// caller leaves to reqwest to report.
    pub(super) fn new(url: &Url) -> Option<Self> {
        let port = url.port_or_known_default()?;
        let endpoint = match url.host()? {
            url::Host::Ipv4(ip) => tcp::Endpoint::Addr(SocketAddr::new(ip.into(), port)),
            url::Host::Ipv6(ip) => tcp::Endpoint::Addr(SocketAddr::new(ip.into(), port)),
            url::Host::Domain(name) => tcp::Endpoint::new(name, port),
        };
        let origin = &url[url::Position::BeforePath..url::Position::AfterQuery];
        // `host_str` keeps an IPv6 literal's brackets; `port` is `None` for the default port.
        let authority = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str()?),
            None => url.host_str()?.to_owned(),
        };
        Some(PlainTarget {
            endpoint,
            origin: if origin.is_empty() { "/" } else { origin }.into(),
            authority: authority.into(),
        })
    }

    /// The request as sent: the request line, `Host`, the probe's `headers`, `User-Agent` and
    /// `Accept` unless the probe sets them (what reqwest sends), a length when there is a body
    /// (or the method expects one), then the body.
    fn request(&self, method: &Method, headers: &HeaderMap, body: Option<&Bytes>) -> Vec<u8> {
        let body_len = body.map_or(0, Bytes::len);
        let mut out = Vec::with_capacity(160 + self.origin.len() + body_len);
        let mut line = |parts: &[&[u8]]| {
            for part in parts {
                out.extend_from_slice(part);
            }
            out.extend_from_slice(b"\r\n");
        };
        line(&[
            method.as_str().as_bytes(),
            b" ",
            self.origin.as_bytes(),
            b" HTTP/1.1",
        ]);
        line(&[b"host: ", self.authority.as_bytes()]);
        for (name, value) in headers {
            line(&[name.as_str().as_bytes(), b": ", value.as_bytes()]);
        }
        if !headers.contains_key(USER_AGENT) {
            line(&[b"user-agent: ", DEFAULT_USER_AGENT.as_bytes()]);
        }
        if !headers.contains_key(ACCEPT) {
            line(&[b"accept: */*"]);
        }
        let expects_body = matches!(*method, Method::POST | Method::PUT | Method::PATCH);
        if body.is_some() || expects_body {
            line(&[b"content-length: ", body_len.to_string().as_bytes()]);
        }
        line(&[]);
        if let Some(body) = body {
            out.extend_from_slice(body);
        }
        out
    }

    /// Sends one request on a new connection and hands the response head and body to `judge`;
    /// the connection is closed when this returns, whatever `judge` left unread.
    pub(super) async fn exchange<T>(
        &self,
        resolver: Option<&HostResolver>,
        method: &Method,
        headers: &HeaderMap,
        body: Option<&Bytes>,
        judge: impl AsyncFnOnce(Head, &mut PlainBody) -> T,
    ) -> Result<T, Failure> {
        let (connection, addr) = self.endpoint.connect(resolver).await?;
        let mut stream = connection
            .into_stream()
            .map_err(|source| Failure::from_error(&tcp::ConnectError { addr, source }))?;
        let failed = |e: ExchangeError| Failure::from_error(&e);
        let io_failed = |source| failed(ExchangeError::Io { addr, source });

        stream
            .write_all(&self.request(method, headers, body))
            .await
            .map_err(io_failed)?;
        let mut reader = Reader {
            stream,
            addr,
            buf: Vec::with_capacity(READ_CHUNK),
            pos: 0,
        };
        let (head, framing) = reader
            .read_head(*method == Method::HEAD)
            .await
            .map_err(failed)?;
        let mut body = PlainBody { reader, framing };
        Ok(judge(head, &mut body).await)
    }
}

/// The connection's bytes, read ahead into a buffer.
struct Reader {
    stream: TcpStream,
    addr: SocketAddr,
    buf: Vec<u8>,
    /// Where the unconsumed bytes of `buf` start.
    pos: usize,
}

impl Reader {
    fn buffered(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Reads more bytes after the unconsumed ones; `Ok(0)` at the end of the stream.
    async fn fill(&mut self) -> Result<usize, ExchangeError> {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.reserve(READ_CHUNK);
        self.stream
            .read_buf(&mut self.buf)
            .await
            .map_err(|source| ExchangeError::Io {
                addr: self.addr,
                source,
            })
    }

    fn response_error(&self, reason: impl Into<String>) -> ExchangeError {
        ExchangeError::Response {
            addr: self.addr,
            reason: reason.into(),
        }
    }

    fn body_error(&self, reason: impl Into<String>) -> ExchangeError {
        ExchangeError::Body {
            addr: self.addr,
            reason: reason.into(),
        }
    }

    /// Reads the final response head (skipping interim 1xx ones) and works out how the body
    /// is framed (RFC 9112 §6.3).
    async fn read_head(&mut self, head_request: bool) -> Result<(Head, Framing), ExchangeError> {
        loop {
            let parsed = self.parse_head()?;
            let Some((consumed, head, framing)) = parsed else {
                if self.buffered().len() >= MAX_HEAD_BYTES {
                    return Err(self.response_error("response head too large"));
                }
                if self.fill().await? == 0 {
                    return Err(self.response_error(if self.buffered().is_empty() {
                        "connection closed without a response"
                    } else {
                        "connection closed inside the response head"
                    }));
                }
                continue;
            };
            self.pos += consumed;
            // 101 switches protocols: there is no HTTP body to read, and nothing more to judge.
            if head.status.is_informational() && head.status != StatusCode::SWITCHING_PROTOCOLS {
                continue;
            }
            let bodiless = head_request
                || head.status.is_informational()
                || head.status == StatusCode::NO_CONTENT
                || head.status == StatusCode::NOT_MODIFIED;
            return Ok((head, if bodiless { Framing::Done } else { framing }));
        }
    }

    /// The head at the start of the buffer, if complete: its length, what a check needs of
    /// it, and the body's framing.
    fn parse_head(&self) -> Result<Option<(usize, Head, Framing)>, ExchangeError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let consumed = match response.parse(self.buffered()) {
            Ok(httparse::Status::Complete(consumed)) => consumed,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(self.response_error(e.to_string())),
        };
        let code = response.code.unwrap_or_default();
        let status = StatusCode::from_u16(code)
            .map_err(|_| self.response_error(format!("invalid status code {code}")))?;
        let mut location = None;
        let mut length: Option<u64> = None;
        let mut chunked = None;
        for header in response.headers.iter() {
            let name = header.name;
            if name.eq_ignore_ascii_case("location") {
                location = Some(String::from_utf8_lossy(header.value).into_owned());
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                // Only the last coding counts: chunked must be last to frame the body.
                let last = header
                    .value
                    .rsplit(|&b| b == b',')
                    .next()
                    .unwrap_or_default();
                chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            } else if name.eq_ignore_ascii_case("content-length") {
                let value = content_length(header.value)
                    .ok_or_else(|| self.response_error("invalid Content-Length"))?;
                if length.is_some_and(|seen| seen != value) {
                    return Err(self.response_error("conflicting Content-Length headers"));
                }
                length = Some(value);
            }
        }
        // Transfer-Encoding overrides Content-Length; without either, the body runs to the
        // end of the connection.
        let framing = match (chunked, length) {
            (Some(true), _) => Framing::Chunked(ChunkState::Size),
            (Some(false), _) | (None, None) => Framing::UntilClose,
            (None, Some(0)) => Framing::Done,
            (None, Some(length)) => Framing::Length(length),
        };
        let head = Head { status, location };
        Ok(Some((consumed, head, framing)))
    }
}

/// How the rest of the body is delimited.
enum Framing {
    /// No (more) body.
    Done,
    /// This many bytes more.
    Length(u64),
    /// Chunks, in this state.
    Chunked(ChunkState),
    /// Everything until the server closes.
    UntilClose,
}

#[derive(Clone, Copy)]
enum ChunkState {
    /// A chunk-size line comes next.
    Size,
    /// This many bytes of chunk data come next.
    Data(u64),
    /// The CRLF after a chunk's data comes next.
    DataEnd,
}

/// The response body of a fresh exchange, read as it arrives.
pub(super) struct PlainBody {
    reader: Reader,
    framing: Framing,
}

impl BodyChunks for PlainBody {
    async fn next_chunk(&mut self) -> Result<Option<&[u8]>, Failure> {
        self.next().await.map_err(|e| Failure::from_error(&e))
    }
}

impl PlainBody {
    async fn next(&mut self) -> Result<Option<&[u8]>, ExchangeError> {
        loop {
            match self.framing {
                Framing::Done => return Ok(None),
                Framing::UntilClose => {
                    if self.reader.buffered().is_empty() && self.reader.fill().await? == 0 {
                        self.framing = Framing::Done;
                        return Ok(None);
                    }
                    return Ok(Some(self.take(usize::MAX)));
                }
                Framing::Length(left) => {
                    if self.reader.buffered().is_empty() && self.reader.fill().await? == 0 {
                        return Err(self
                            .reader
                            .body_error(format!("connection closed {left} bytes early")));
                    }
                    let chunk_len = self.reader.buffered().len().min(clamp(left));
                    self.framing = match left - chunk_len as u64 {
                        0 => Framing::Done,
                        left => Framing::Length(left),
                    };
                    return Ok(Some(self.take(chunk_len)));
                }
                Framing::Chunked(ChunkState::Data(left)) => {
                    if self.reader.buffered().is_empty() && self.reader.fill().await? == 0 {
                        return Err(self.reader.body_error("connection closed inside a chunk"));
                    }
                    let chunk_len = self.reader.buffered().len().min(clamp(left));
                    self.framing = Framing::Chunked(match left - chunk_len as u64 {
                        0 => ChunkState::DataEnd,
                        left => ChunkState::Data(left),
                    });
                    return Ok(Some(self.take(chunk_len)));
                }
                Framing::Chunked(ChunkState::DataEnd) => {
                    while self.reader.buffered().len() < 2 {
                        if self.reader.fill().await? == 0 {
                            return Err(self.reader.body_error("connection closed after a chunk"));
                        }
                    }
                    if &self.reader.buffered()[..2] != b"\r\n" {
                        return Err(self.reader.body_error("no CRLF after a chunk"));
                    }
                    self.reader.pos += 2;
                    self.framing = Framing::Chunked(ChunkState::Size);
                }
                Framing::Chunked(ChunkState::Size) => {
                    match httparse::parse_chunk_size(self.reader.buffered()) {
                        Ok(httparse::Status::Complete((consumed, size))) => {
                            self.reader.pos += consumed;
                            // The last chunk: trailers, if any, say nothing a check asserts.
                            self.framing = if size == 0 {
                                Framing::Done
                            } else {
                                Framing::Chunked(ChunkState::Data(size))
                            };
                        }
                        Ok(httparse::Status::Partial) => {
                            if self.reader.buffered().len() >= MAX_HEAD_BYTES {
                                return Err(self.reader.body_error("chunk size line too long"));
                            }
                            if self.reader.fill().await? == 0 {
                                return Err(self
                                    .reader
                                    .body_error("connection closed before the last chunk"));
                            }
                        }
                        Err(_) => return Err(self.reader.body_error("invalid chunk size")),
                    }
                }
            }
        }
    }

    /// Consumes and returns up to `limit` buffered bytes.
    fn take(&mut self, limit: usize) -> &[u8] {
        let start = self.reader.pos;
        let end = start + self.reader.buffered().len().min(limit);
        self.reader.pos = end;
        &self.reader.buf[start..end]
    }
}

/// A Content-Length value: digits only (RFC 9110 §8.6; no sign, unlike Rust's integer parser),
/// surrounding blanks allowed.
fn content_length(value: &[u8]) -> Option<u64> {
    let digits = value.trim_ascii();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// `left` as a `usize` bound on a slice length.
fn clamp(left: u64) -> usize {
    usize::try_from(left).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_is_digits_only() {
        assert_eq!(content_length(b"42"), Some(42));
        assert_eq!(content_length(b" 7 "), Some(7));
        for bad in [
            &b""[..],
            b"+5",
            b"-1",
            b"5, 5",
            b"0x10",
            b"99999999999999999999",
        ] {
            assert_eq!(content_length(bad), None, "{bad:?}");
        }
    }
}
