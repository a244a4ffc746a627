//! One HTTP/1.1 exchange on a new connection, plain (`http://`) or over TLS (`https://`): the
//! request written in one piece, the response head parsed by `httparse`, the body framed by
//! hand (RFC 9112 §6).
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
//! Framing by hand is also what lets a check accept every answer a lenient recipient (RFC 9112,
//! and curl) accepts, where hyper's limits are fixed: up to [`MAX_HEADERS`] header fields and
//! [`MAX_HEAD_BYTES`] of head, obsolete line folding, a `Content-Length` list of one repeated
//! value, bare LF line ends in chunked framing, and an `https://` body that ends with the
//! connection without a TLS `close_notify` when nothing says it should be longer. `https://`
//! offers no ALPN protocol, so the server speaks HTTP/1.1.
//!
//! `reuse_connection` stays with reqwest (see the parent module).

use std::{
    io,
    mem::MaybeUninit,
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use reqwest::{
    Method, StatusCode, Url,
    header::{ACCEPT, HOST, HeaderMap, USER_AGENT},
};
use rustls::pki_types::ServerName;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::TcpStream,
};
use tokio_rustls::{TlsConnector, client::TlsStream};

use super::{BodyChunks, USER_AGENT as DEFAULT_USER_AGENT};
use crate::probe::{Failure, tcp};

/// Most header fields a response head may have: well above hyper's default of 100, which real
/// servers (long `Set-Cookie` and `Link` lists) exceed while curl accepts them. Parsed into
/// uninitialised slots on the stack, so the limit costs nothing per check.
pub(super) const MAX_HEADERS: usize = 256;
/// Largest response head accepted; real ones are well under 8 KiB, curl takes up to 300 KiB.
const MAX_HEAD_BYTES: usize = 256 * 1024;
/// Longest chunk-size line (size and extensions) accepted.
const MAX_CHUNK_LINE_BYTES: usize = 64 * 1024;
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

/// A TLS handshake that failed, naming the address; the cause inside says why (a rustls error
/// is `tls`, see [`classify`](crate::probe::classify)).
#[derive(Debug, thiserror::Error)]
#[error("TLS handshake with {addr} failed")]
struct HandshakeError {
    addr: SocketAddr,
    #[source]
    source: io::Error,
}

/// Where one request goes, prepared once per URL: the first request of every check uses it.
pub(super) struct Target {
    endpoint: tcp::Endpoint,
    /// For `https://`: the name the TLS handshake sends (SNI) and the certificate must match.
    tls_name: Option<ServerName<'static>>,
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

impl Target {
    /// The target for `url` (an `http://` or `https://` URL); `None` when it has no host or
    /// port, or a host TLS cannot name, which the caller leaves to reqwest to report.
    pub(super) fn new(url: &Url) -> Option<Self> {
        let port = url.port_or_known_default()?;
        let (endpoint, ip) = match url.host()? {
            url::Host::Ipv4(ip) => (
                tcp::Endpoint::Addr(SocketAddr::new(ip.into(), port)),
                Some(ip.into()),
            ),
            url::Host::Ipv6(ip) => (
                tcp::Endpoint::Addr(SocketAddr::new(ip.into(), port)),
                Some(ip.into()),
            ),
            url::Host::Domain(name) => (tcp::Endpoint::new(name, port), None),
        };
        let tls_name = match (url.scheme(), ip) {
            ("http", _) => None,
            ("https", Some(ip)) => Some(ServerName::IpAddress(ip)),
            ("https", None) => Some(ServerName::try_from(url.host_str()?).ok()?.to_owned()),
            _ => return None,
        };
        let origin = &url[url::Position::BeforePath..url::Position::AfterQuery];
        // `host_str` keeps an IPv6 literal's brackets; `port` is `None` for the default port.
        let authority = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str()?),
            None => url.host_str()?.to_owned(),
        };
        Some(Target {
            endpoint,
            tls_name,
            origin: if origin.is_empty() { "/" } else { origin }.into(),
            authority: authority.into(),
        })
    }

    /// The request as sent: the request line, `Host` (the probe's own if it sets one: a
    /// second `Host` line makes servers answer 400), the probe's `headers`, `User-Agent` and
    /// `Accept` unless the probe sets them (what reqwest sends), a length when there is a body
    /// (or the method expects one), then the body. Header names are matched without regard to
    /// case ([`HeaderMap`] keeps them lowercase).
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
        if !headers.contains_key(HOST) {
            line(&[b"host: ", self.authority.as_bytes()]);
        }
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

    /// Sends one request on a new connection (after a TLS handshake through `tls` for
    /// `https://`) and hands the response head and body to `judge`; the connection is closed
    /// when this returns, whatever `judge` left unread.
    pub(super) async fn exchange<T>(
        &self,
        lookup: tcp::Lookup<'_>,
        tls: &TlsConnector,
        method: &Method,
        headers: &HeaderMap,
        body: Option<&Bytes>,
        judge: impl AsyncFnOnce(Head, &mut Body) -> T,
    ) -> Result<T, Failure> {
        let (connection, addr) = self.endpoint.connect(lookup).await?;
        let tcp = connection
            .into_stream()
            .map_err(|source| Failure::from_error(&tcp::ConnectError { addr, source }))?;
        let mut stream = match &self.tls_name {
            None => Stream::Plain(tcp),
            Some(name) => match tls.connect(name.clone(), tcp).await {
                // On the heap: a TLS session is kilobytes a plain check should not carry.
                Ok(tls) => Stream::Tls(Box::new(tls)),
                Err(source) => return Err(Failure::from_error(&HandshakeError { addr, source })),
            },
        };
        let failed = |e: ExchangeError| Failure::from_error(&e);
        let io_failed = |source| failed(ExchangeError::Io { addr, source });

        stream
            .write_all(&self.request(method, headers, body))
            .await
            .map_err(io_failed)?;
        // TLS holds written records until flushed; a TCP flush does nothing.
        stream.flush().await.map_err(io_failed)?;
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
        let mut body = Body { reader, framing };
        Ok(judge(head, &mut body).await)
    }
}

/// The connection of an exchange: plain TCP, or TLS over it.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_flush(cx),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The connection's bytes, read ahead into a buffer.
struct Reader {
    stream: Stream,
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
    ///
    /// A TLS peer that closes without `close_notify` reads as an `UnexpectedEof` error. Many
    /// servers do, and curl takes it as the end of the stream; so does this, and the framing
    /// decides whether the end came too early (a length not reached, a last chunk missing) or
    /// is where the body ends (a body delimited by the close). A truncation attacker gains
    /// nothing over what a close-delimited plain body already allows.
    async fn fill(&mut self) -> Result<usize, ExchangeError> {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.reserve(READ_CHUNK);
        match self.stream.read_buf(&mut self.buf).await {
            Ok(read) => Ok(read),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
            Err(source) => Err(ExchangeError::Io {
                addr: self.addr,
                source,
            }),
        }
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
                    return Err(self.head_too_large());
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
            // A read may bring more than the limit at once; the limit is on the head alone.
            if consumed > MAX_HEAD_BYTES {
                return Err(self.head_too_large());
            }
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

    fn head_too_large(&self) -> ExchangeError {
        self.response_error(format!(
            "response head larger than {} KiB",
            MAX_HEAD_BYTES / 1024
        ))
    }

    /// The head at the start of the buffer, if complete: its length, what a check needs of
    /// it, and the body's framing.
    fn parse_head(&self) -> Result<Option<(usize, Head, Framing)>, ExchangeError> {
        // Uninitialised: filling 256 slots per parse would cost every check for the rare head
        // that needs them.
        let mut headers = [const { MaybeUninit::uninit() }; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut []);
        let parsed = httparse::ParserConfig::default()
            // RFC 9112 §5.2: a user agent may replace an obs-fold with a space and go on.
            .allow_obsolete_multiline_headers_in_responses(true)
            .parse_response_with_uninit_headers(&mut response, self.buffered(), &mut headers);
        let consumed = match parsed {
            Ok(httparse::Status::Complete(consumed)) => consumed,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(self.response_error(format!("more than {MAX_HEADERS} header fields")));
            }
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
                location = Some(unfold(header.value));
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

/// A header value as text, each obsolete line folding (CRLF or LF, then blanks) replaced by
/// one space as RFC 9112 §5.2 says.
fn unfold(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    if !text.contains('\n') {
        return text.into_owned();
    }
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i == 0 {
            out.push_str(line.strip_suffix('\r').unwrap_or(line));
        } else {
            out.push(' ');
            let line = line.trim_start_matches([' ', '\t']);
            out.push_str(line.strip_suffix('\r').unwrap_or(line));
        }
    }
    out
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
    /// The line end after a chunk's data comes next.
    DataEnd,
}

/// The response body of a fresh exchange, read as it arrives.
pub(super) struct Body {
    reader: Reader,
    framing: Framing,
}

impl BodyChunks for Body {
    async fn next_chunk(&mut self) -> Result<Option<&[u8]>, Failure> {
        self.next().await.map_err(|e| Failure::from_error(&e))
    }
}

impl Body {
    /// The leaf certificate the server presented (DER), when the exchange is over TLS.
    pub(super) fn peer_certificate(&self) -> Option<&[u8]> {
        match &self.reader.stream {
            Stream::Plain(_) => None,
            Stream::Tls(stream) => Some(stream.get_ref().1.peer_certificates()?.first()?),
        }
    }

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
                    // CRLF, or a bare LF (RFC 9112 §2.2: a recipient may take LF alone).
                    let wanted = match self.reader.buffered() {
                        [b'\n', ..] => 1,
                        [b'\r', b'\n', ..] => 2,
                        [] | [b'\r'] => 0,
                        _ => return Err(self.reader.body_error("no line end after a chunk")),
                    };
                    if wanted == 0 {
                        if self.reader.fill().await? == 0 {
                            return Err(self.reader.body_error("connection closed after a chunk"));
                        }
                        continue;
                    }
                    self.reader.pos += wanted;
                    self.framing = Framing::Chunked(ChunkState::Size);
                }
                Framing::Chunked(ChunkState::Size) => {
                    match chunk_size_line(self.reader.buffered()) {
                        Ok(Some((consumed, size))) => {
                            self.reader.pos += consumed;
                            // The last chunk: trailers, if any, say nothing a check asserts.
                            self.framing = if size == 0 {
                                Framing::Done
                            } else {
                                Framing::Chunked(ChunkState::Data(size))
                            };
                        }
                        Ok(None) => {
                            if self.reader.buffered().len() >= MAX_CHUNK_LINE_BYTES {
                                return Err(self.reader.body_error("chunk size line too long"));
                            }
                            if self.reader.fill().await? == 0 {
                                return Err(self
                                    .reader
                                    .body_error("connection closed before the last chunk"));
                            }
                        }
                        Err(()) => return Err(self.reader.body_error("invalid chunk size")),
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
/// surrounding blanks allowed. A list of one value repeated (`12, 12`, what some proxies make
/// of duplicated headers) is that value, as §8.6 allows; differing values are no length.
fn content_length(value: &[u8]) -> Option<u64> {
    let mut length = None;
    for element in value.split(|&b| b == b',') {
        let digits = element.trim_ascii();
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let parsed: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
        if length.is_some_and(|seen| seen != parsed) {
            return None;
        }
        length = Some(parsed);
    }
    length
}

/// A chunk-size line at the start of `buf` (RFC 9112 §7.1): hex digits, optional blanks and
/// extensions (ignored), then CRLF or a bare LF. `Ok(None)` while the line is incomplete;
/// otherwise the line's length with its end, and the size.
fn chunk_size_line(buf: &[u8]) -> Result<Option<(usize, u64)>, ()> {
    let Some(end) = buf.iter().position(|&b| b == b'\n') else {
        // Whatever comes, a line that does not start with a digit is no size.
        return match buf.first() {
            Some(b) if !b.is_ascii_hexdigit() => Err(()),
            _ => Ok(None),
        };
    };
    let line = &buf[..end];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let size = line.split(|&b| b == b';').next().unwrap_or_default();
    let digits = size.trim_ascii_end();
    // At most 16 hex digits fit a u64; leading blanks are not allowed.
    if digits.is_empty() || digits.len() > 16 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return Err(());
    }
    let size =
        u64::from_str_radix(std::str::from_utf8(digits).map_err(|_| ())?, 16).map_err(|_| ())?;
    Ok(Some((end + 1, size)))
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
        for bad in [&b""[..], b"+5", b"-1", b"0x10", b"99999999999999999999"] {
            assert_eq!(content_length(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn content_length_lists_of_one_value_are_that_value() {
        assert_eq!(content_length(b"12, 12"), Some(12));
        assert_eq!(content_length(b"5,5,5"), Some(5));
        for bad in [&b"5, 6"[..], b"5,", b",5", b"5, +5", b"5,,5"] {
            assert_eq!(content_length(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn chunk_size_lines_end_with_crlf_or_a_bare_lf() {
        assert_eq!(chunk_size_line(b"1a\r\ndata"), Ok(Some((4, 26))));
        assert_eq!(chunk_size_line(b"1A\ndata"), Ok(Some((3, 26))));
        assert_eq!(chunk_size_line(b"5;ext=1\r\n"), Ok(Some((9, 5))));
        assert_eq!(chunk_size_line(b"5 ;ext=\"a b\"\n"), Ok(Some((13, 5))));
        assert_eq!(chunk_size_line(b"0\n"), Ok(Some((2, 0))));
        assert_eq!(chunk_size_line(b"ffff"), Ok(None));
        assert_eq!(chunk_size_line(b""), Ok(None));
        for bad in [
            &b"x\r\n"[..],
            b"\r\n",
            b" 5\r\n",
            b"5 5\r\n",
            b"-5\n",
            b"11111111111111111\n",
            b"zz",
        ] {
            assert_eq!(chunk_size_line(bad), Err(()), "{bad:?}");
        }
    }

    #[test]
    fn folded_values_are_joined_with_one_space() {
        assert_eq!(unfold(b"/next"), "/next");
        assert_eq!(unfold(b"/a\r\n  b"), "/a b");
        assert_eq!(unfold(b"/a\n\tb\r\n c"), "/a b c");
    }
}
