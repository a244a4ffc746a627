//! One plain `http://` exchange on a new connection, through hyper's HTTP/1.1 client directly.
//!
//! A check that opens a fresh connection and closes it after one exchange needs none of what
//! reqwest adds for pooled clients: a pool checkout, a stack of connector services, and a
//! spawned task per connection that drives it and wakes the check across tasks. At 1,000
//! checks a second that machinery cost more CPU than the exchange itself (issue 7). Here the
//! check's own task drives the connection while it waits for the answer, and the connection
//! is closed as soon as the check has judged what it needs.
//!
//! `https://` and `reuse_connection` stay with reqwest (see the parent module).

use std::{
    future::{Future, poll_fn},
    net::{IpAddr, SocketAddr},
    pin::pin,
    task::Poll,
};

use bytes::Bytes;
use http::{
    HeaderMap, HeaderValue, Request, Response, Uri,
    header::{ACCEPT, HOST, USER_AGENT},
};
use http_body_util::{BodyExt, Full, combinators::MapErr};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use reqwest::{Method, Url};

use super::{super::tcp, USER_AGENT as DEFAULT_USER_AGENT};
use crate::probe::{Failure, dns::HostResolver};

/// The body of a fresh exchange's response, its errors marked as body errors.
pub(super) type FreshBody = MapErr<Incoming, fn(hyper::Error) -> ExchangeError>;

/// Why an exchange failed once the connection was up. [`classify`](crate::probe::classify)
/// tells them apart: no (valid) answer is `protocol`, an answer cut short is `io`, unless an
/// I/O cause inside says more.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExchangeError {
    /// The request could not be sent, or no valid response head came back.
    #[error("no valid HTTP response from {addr}")]
    Response {
        /// The server's address.
        addr: SocketAddr,
        /// What hyper said.
        #[source]
        source: hyper::Error,
    },
    /// The response body could not be read to its end (or to the limit).
    #[error("cannot read the response body")]
    Body(#[source] hyper::Error),
}

/// Where one request goes, prepared once per URL: the first request of every check uses it.
/// Kept small (10,000 probes keep one each); the headers are put together per request.
pub(super) struct PlainTarget {
    host: TargetHost,
    port: u16,
    /// The request target in origin form (`/path?query`): hyper writes the URI as given, and
    /// an absolute URI is what one sends to a proxy.
    origin: Uri,
    /// The `Host` header: the URL's host, and its port unless it is the default one.
    authority: HeaderValue,
}

enum TargetHost {
    Ip(IpAddr),
    Name(Box<str>),
}

impl PlainTarget {
    /// The target for `url` (an `http://` URL); `None` when hyper cannot request it (no host,
    /// or a target it rejects), which the caller leaves to reqwest to report.
    pub(super) fn new(url: &Url) -> Option<Self> {
        let host = match url.host()? {
            url::Host::Ipv4(ip) => TargetHost::Ip(ip.into()),
            url::Host::Ipv6(ip) => TargetHost::Ip(ip.into()),
            url::Host::Domain(name) => TargetHost::Name(name.into()),
        };
        let port = url.port_or_known_default()?;
        let origin =
            Uri::try_from(&url[url::Position::BeforePath..url::Position::AfterQuery]).ok()?;
        // `host_str` keeps an IPv6 literal's brackets; `port` is `None` for the default port.
        let authority = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str()?),
            None => url.host_str()?.to_owned(),
        };
        Some(PlainTarget {
            host,
            port,
            origin,
            authority: HeaderValue::try_from(authority).ok()?,
        })
    }

    /// `Host`, the probe's `headers`, then `User-Agent` and `Accept` unless the probe sets
    /// them: what reqwest sends, in the same order.
    fn request_headers(&self, headers: &HeaderMap) -> HeaderMap {
        let mut all = HeaderMap::with_capacity(headers.len() + 3);
        all.insert(HOST, self.authority.clone());
        for (name, value) in headers {
            all.append(name, value.clone());
        }
        if !all.contains_key(USER_AGENT) {
            all.insert(USER_AGENT, HeaderValue::from_static(DEFAULT_USER_AGENT));
        }
        if !all.contains_key(ACCEPT) {
            all.insert(ACCEPT, HeaderValue::from_static("*/*"));
        }
        all
    }

    /// Sends one request on a new connection and hands the response to `judge`, driving the
    /// connection until `judge` is done; the connection is closed when this returns.
    pub(super) async fn exchange<T>(
        &self,
        resolver: Option<&HostResolver>,
        method: Method,
        headers: &HeaderMap,
        body: Option<Bytes>,
        judge: impl AsyncFnOnce(Response<FreshBody>) -> T,
    ) -> Result<T, Failure> {
        let connected = match &self.host {
            // An IP literal needs neither a lookup nor a list of addresses.
            TargetHost::Ip(ip) => tcp::connect(&[SocketAddr::new(*ip, self.port)]).await,
            TargetHost::Name(name) => {
                let addrs = tcp::resolve(name, self.port, resolver).await?;
                tcp::connect(&addrs).await
            }
        };
        let (connection, addr) = connected.map_err(|e| Failure::from_error(&e))?;
        let stream = connection
            .into_stream()
            .map_err(|source| Failure::from_error(&tcp::ConnectError { addr, source }))?;

        let mut request = Request::new(Full::new(body.unwrap_or_default()));
        *request.method_mut() = method;
        *request.uri_mut() = self.origin.clone();
        *request.headers_mut() = self.request_headers(headers);

        // An HTTP/1.1 handshake writes nothing; it only sets the connection up.
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|source| Failure::from_error(&ExchangeError::Response { addr, source }))?;
        let exchange = async move {
            let response = sender
                .send_request(request)
                .await
                .map_err(|source| ExchangeError::Response { addr, source })?;
            let body_error: fn(hyper::Error) -> ExchangeError = ExchangeError::Body;
            Ok(judge(response.map(|body| body.map_err(body_error))).await)
        };
        drive(connection, exchange)
            .await
            .map_err(|e| Failure::from_error(&e))
    }
}

/// Polls `exchange` to its end while polling `connection`, which reads and writes for it, in
/// the same task. A connection that fails first has already handed its error to whatever the
/// exchange awaits (hyper does that) unless the exchange was reading the body: then the
/// connection's own error is the better account of what went wrong.
async fn drive<T>(
    connection: impl Future<Output = hyper::Result<()>>,
    exchange: impl Future<Output = Result<T, ExchangeError>>,
) -> Result<T, ExchangeError> {
    let mut connection = pin!(connection);
    let mut exchange = pin!(exchange);
    let mut connection_open = true;
    poll_fn(|cx| {
        loop {
            if let Poll::Ready(done) = exchange.as_mut().poll(cx) {
                return Poll::Ready(done);
            }
            if !connection_open {
                return Poll::Pending;
            }
            match connection.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                // Done with its part; the exchange may now be ready too.
                Poll::Ready(Ok(())) => connection_open = false,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(ExchangeError::Body(e))),
            }
        }
    })
    .await
}
