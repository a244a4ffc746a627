//! The HTTP(S) check: one request and the redirects it leads to, the final status, and
//! assertions on a bounded prefix of the body.
//!
//! Every check pays for (and measures) a fresh DNS lookup, connect and TLS handshake, as a new
//! visitor would; only probes that say `reuse_connection = true` keep connections between
//! checks. Requests on fresh connections, `http://` and `https://`, are written and framed
//! here ([`fresh`], which says why); kept connections go through reqwest clients, shared
//! between probes with the same settings. Redirects are followed here, hop by hop, so a chain
//! may cross from one to the other and is judged one way.
//! The overall timeout is the caller's; this module only says what happened.
//! May use `model`, `config` and the sibling probe modules.

mod fresh;

use std::{borrow::Cow, net::SocketAddr, time::Duration};

use bytes::Bytes;
use regex::Regex;
use reqwest::{
    Client, Method, StatusCode, Url,
    dns::{Addrs, Name, Resolve, Resolving},
    header::{self, HeaderMap},
    redirect,
    tls::TlsInfo,
};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

pub(crate) use self::fresh::ExchangeError;
use self::fresh::{Head, Target};
use super::{
    Failure, Observation, SetupError, Toolkit,
    dns::HostResolver,
    tcp::{self, excerpt},
    tls,
};
use crate::{
    config::{HttpSpec, StatusMatch},
    model::{CertStatus, ErrorClass, ProbeName},
};

/// Sent unless the probe sets its own `User-Agent`, so operators can recognise (and allow-list)
/// the monitor in their logs.
const USER_AGENT: &str = concat!("upledger/", env!("CARGO_PKG_VERSION"));

/// The settings that make two probes' HTTP clients different.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ClientKey {
    tls_verify: bool,
    dns_server: Option<SocketAddr>,
    dns_timeout: Duration,
    reuse_connection: bool,
}

/// A client that never keeps idle connections (every check connects afresh) unless the probes
/// it serves say `reuse_connection`, follows no redirects itself (the checker does), ignores
/// proxy variables, reports the peer certificate and, with a `dns_server`, resolves through it.
/// It takes as many header fields as [`fresh`] does, and folded header lines; what reqwest
/// does not let us set (hyper's head size limit, bare LF in chunked framing, a TLS body cut
/// without `close_notify`) stays as hyper has it, which is why fresh connections do not come
/// here.
fn build_client(key: &ClientKey, tls: rustls::ClientConfig) -> Result<Client, reqwest::Error> {
    let mut builder = Client::builder()
        .tls_backend_preconfigured(tls)
        .tls_info(true)
        .no_proxy()
        .pool_max_idle_per_host(if key.reuse_connection { usize::MAX } else { 0 })
        .redirect(redirect::Policy::none())
        .http1_max_headers(fresh::MAX_HEADERS)
        .http1_allow_obsolete_multiline_headers_in_responses(true)
        .user_agent(USER_AGENT);
    if let Some(server) = key.dns_server {
        builder = builder.dns_resolver(ProbeResolver(HostResolver::new(server, key.dns_timeout)));
    }
    builder.build()
}

/// A prepared HTTP check of one probe.
pub(crate) struct HttpChecker {
    /// Sends every request of a probe that says `reuse_connection`.
    client: Client,
    /// Shakes hands for `https://` requests on fresh connections. No ALPN: [`fresh`] speaks
    /// HTTP/1.1 only.
    tls: TlsConnector,
    /// The probe's `dns_server`, for requests on fresh connections (the client has its own).
    resolver: Option<HostResolver>,
    /// The first request's target when it goes through [`fresh`], prepared once.
    first_target: Option<Target>,
    reuse_connection: bool,
    follow_redirects: bool,
    /// Most redirects followed; one more fails the check with class `protocol`.
    max_redirects: u32,
    /// The method, or the configured text when it is not a valid HTTP method.
    method: Result<Method, String>,
    url: Url,
    headers: HeaderMap,
    body: Option<Bytes>,
    expect_status: Vec<StatusMatch>,
    body_contains: Option<String>,
    body_not_contains: Option<String>,
    body_regex: Option<Regex>,
    max_body_bytes: u64,
    cert_expiry_warn: Duration,
}

/// One request of a check: the first, or one a redirect led to.
struct Hop<'a> {
    method: Method,
    url: Cow<'a, Url>,
    headers: Cow<'a, HeaderMap>,
    body: Option<Bytes>,
    /// Redirects followed before this request.
    redirects: u32,
}

/// What one request's response means for the check.
enum HopEnd {
    /// Judged: the check's observation.
    Done(Observation),
    /// A redirect to follow.
    Redirect { status: StatusCode, to: Url },
}

impl From<Failure> for HopEnd {
    fn from(failure: Failure) -> Self {
        HopEnd::Done(failure.into())
    }
}

impl HttpChecker {
    /// Takes a client for the probe's TLS, resolver and reuse settings from `toolkit` and
    /// validates its request headers.
    pub(crate) fn new(
        probe: &ProbeName,
        spec: &HttpSpec,
        dns_timeout: Duration,
        toolkit: &Toolkit,
    ) -> Result<Self, SetupError> {
        let key = ClientKey {
            tls_verify: spec.tls_verify,
            dns_server: spec.dns_server,
            dns_timeout,
            reuse_connection: spec.reuse_connection,
        };
        let http_error = |source| SetupError::HttpClient {
            probe: probe.clone(),
            source,
        };
        let tls_failed = |e: rustls::Error| SetupError::Tls {
            probe: probe.clone(),
            message: e.to_string(),
        };
        let client = {
            let mut clients = toolkit
                .http_clients
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            match clients.get(&key) {
                Some(client) => client.clone(),
                None => {
                    let tls = toolkit
                        .tls_config(spec.tls_verify, true)
                        .map_err(tls_failed)?;
                    let client = build_client(&key, (*tls).clone()).map_err(http_error)?;
                    clients.insert(key, client.clone());
                    client
                }
            }
        };

        let method = Method::from_bytes(spec.method.as_bytes()).map_err(|_| spec.method.clone());
        // Building a request once surfaces bad header names or values as a setup error, and
        // yields headers ready to be cloned into every check.
        let mut template = client.request(Method::GET, spec.url.clone());
        for (name, value) in &spec.headers {
            template = template.header(name, value);
        }
        let template = template.build().map_err(http_error)?;
        let url = template.url().clone();
        let headers = template.headers().clone();

        // Shared with raw TCP probes: the configuration that offers no ALPN protocol.
        let tls = toolkit
            .tls_config(spec.tls_verify, false)
            .map_err(tls_failed)?;

        Ok(HttpChecker {
            first_target: if takes_fresh_path(&url, spec.reuse_connection) {
                Target::new(&url)
            } else {
                None
            },
            method,
            url,
            headers,
            client,
            tls: TlsConnector::from(tls),
            resolver: spec
                .dns_server
                .map(|server| HostResolver::new(server, dns_timeout)),
            reuse_connection: spec.reuse_connection,
            follow_redirects: spec.follow_redirects,
            max_redirects: spec.max_redirects,
            body: spec.body.clone().map(Bytes::from),
            expect_status: spec.expect_status.clone(),
            body_contains: spec.body_contains.clone(),
            body_not_contains: spec.body_not_contains.clone(),
            body_regex: spec.body_regex.clone(),
            max_body_bytes: spec.max_body_bytes,
            cert_expiry_warn: spec.cert_expiry_warn,
        })
    }

    /// Sends the request and follows its redirects, then judges the last status and the body
    /// prefix. `deadline` is the instant the probe's timeout ends the check, with that timeout:
    /// a system-resolver lookup still pending then fails as `dns` (see [`tcp::Lookup`]).
    pub(crate) async fn check(&self, deadline: (Instant, Duration)) -> Observation {
        let method = match &self.method {
            Ok(method) => method.clone(),
            Err(text) => {
                return Failure::new(
                    ErrorClass::Protocol,
                    format!("invalid HTTP method {}", excerpt(text.as_bytes())),
                )
                .into();
            }
        };
        let mut hop = Hop {
            method,
            url: Cow::Borrowed(&self.url),
            headers: Cow::Borrowed(&self.headers),
            body: self.body.clone(),
            redirects: 0,
        };
        loop {
            match self.send(&hop, deadline).await {
                HopEnd::Done(observation) => return observation,
                HopEnd::Redirect { to, .. } if hop.redirects >= self.max_redirects => {
                    return Failure::new(
                        ErrorClass::Protocol,
                        format!(
                            "too many redirects (more than {}), next to {to}",
                            self.max_redirects
                        ),
                    )
                    .into();
                }
                HopEnd::Redirect { status, to } => hop = hop.redirected(status, to),
            }
        }
    }

    /// Sends one request, through [`fresh`] or the client, and judges its response.
    async fn send(&self, hop: &Hop<'_>, deadline: (Instant, Duration)) -> HopEnd {
        if takes_fresh_path(&hop.url, self.reuse_connection) {
            let prepared;
            let target = match &self.first_target {
                Some(target) if hop.redirects == 0 => Some(target),
                _ => {
                    prepared = Target::new(&hop.url);
                    prepared.as_ref()
                }
            };
            // A URL without a host or port goes to reqwest, which says what is wrong with it.
            if let Some(target) = target {
                let judged = target
                    .exchange(
                        tcp::Lookup {
                            resolver: self.resolver.as_ref(),
                            deadline: Some(deadline),
                        },
                        &self.tls,
                        &hop.method,
                        &hop.headers,
                        hop.body.as_ref(),
                        async |head: Head, body: &mut fresh::Body| {
                            let cert = body
                                .peer_certificate()
                                .and_then(|leaf| tls::cert_status(leaf, self.cert_expiry_warn));
                            match self.judge_head(&hop.url, head, cert) {
                                Some(end) => end,
                                None => self.judge_body(body, cert).await,
                            }
                        },
                    )
                    .await;
                return judged.unwrap_or_else(HopEnd::from);
            }
        }
        let mut request = self
            .client
            .request(hop.method.clone(), hop.url.as_ref().clone())
            .headers(hop.headers.as_ref().clone());
        if let Some(body) = &hop.body {
            request = request.body(body.clone());
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return Failure::from_error(&error).into(),
        };
        let cert = self.cert_of(response.extensions().get::<TlsInfo>());
        let head = Head {
            status: response.status(),
            location: location_of(response.headers()),
        };
        if let Some(end) = self.judge_head(&hop.url, head, cert) {
            return end;
        }
        let mut body = ClientBody {
            response,
            chunk: Bytes::new(),
        };
        self.judge_body(&mut body, cert).await
    }

    /// Judges a response head: a redirect to follow, or an unexpected status; `None` when the
    /// body is to be read and judged.
    fn judge_head(&self, url: &Url, head: Head, cert: Option<CertStatus>) -> Option<HopEnd> {
        if let Some(to) = self.redirect_target(url, head.status, head.location.as_deref()) {
            return Some(HopEnd::Redirect {
                status: head.status,
                to,
            });
        }
        if !self.status_expected(head.status) {
            return Some(HopEnd::Done(Observation::failed(
                Failure::new(ErrorClass::HttpStatus, describe(head.status)),
                cert,
            )));
        }
        None
    }

    /// Reads the body (up to the limit) and asserts on it.
    async fn judge_body(&self, body: &mut impl BodyChunks, cert: Option<CertStatus>) -> HopEnd {
        let prefix = match self.read_body(body).await {
            Ok(prefix) => prefix,
            Err(failure) => return HopEnd::Done(Observation::failed(failure, cert)),
        };
        HopEnd::Done(match self.assert_body(&prefix) {
            Some(failure) => Observation::failed(failure, cert),
            None => Observation::passed(cert),
        })
    }

    /// Where a redirect response leads, when the probe follows redirects. A redirect without
    /// a usable `Location` is judged like any other response.
    fn redirect_target(
        &self,
        url: &Url,
        status: StatusCode,
        location: Option<&str>,
    ) -> Option<Url> {
        if !self.follow_redirects || !is_redirect(status) {
            return None;
        }
        url.join(location?).ok()
    }

    fn cert_of(&self, info: Option<&TlsInfo>) -> Option<CertStatus> {
        let leaf = info?.peer_certificate()?;
        tls::cert_status(leaf, self.cert_expiry_warn)
    }

    fn status_expected(&self, status: StatusCode) -> bool {
        let code = status.as_u16();
        if self.expect_status.is_empty() {
            // The documented default, should a caller build a spec without one.
            return status.is_success();
        }
        self.expect_status.iter().any(|m| m.matches(code))
    }

    fn wants_body(&self) -> bool {
        self.body_contains.is_some()
            || self.body_not_contains.is_some()
            || self.body_regex.is_some()
    }

    /// Reads at most `max_body_bytes` of the body, chunk by chunk, and stops there: an endless
    /// or huge body costs neither time nor memory beyond the limit. The bytes are kept only when
    /// an assertion needs them; otherwise reading just proves the body arrives.
    async fn read_body(&self, body: &mut impl BodyChunks) -> Result<Vec<u8>, Failure> {
        let limit = usize::try_from(self.max_body_bytes).unwrap_or(usize::MAX);
        let keep = self.wants_body();
        let mut kept = Vec::new();
        let mut read = 0usize;
        while read < limit {
            let Some(chunk) = body.next_chunk().await? else {
                break;
            };
            let take = chunk.len().min(limit - read);
            if keep {
                kept.extend_from_slice(&chunk[..take]);
            }
            read += take;
        }
        Ok(kept)
    }

    /// The first failed body assertion, if any.
    fn assert_body(&self, body: &[u8]) -> Option<Failure> {
        if !self.wants_body() {
            return None;
        }
        let text = String::from_utf8_lossy(body);
        let assertion = |detail: String| Some(Failure::new(ErrorClass::Assertion, detail));
        if let Some(needle) = &self.body_contains
            && !text.contains(needle.as_str())
        {
            return assertion(format!(
                "body does not contain {}",
                excerpt(needle.as_bytes())
            ));
        }
        if let Some(needle) = &self.body_not_contains
            && text.contains(needle.as_str())
        {
            return assertion(format!("body contains {}", excerpt(needle.as_bytes())));
        }
        if let Some(regex) = &self.body_regex
            && !regex.is_match(&text)
        {
            return assertion(format!(
                "body does not match {}",
                excerpt(regex.as_str().as_bytes())
            ));
        }
        None
    }
}

/// "HTTP 503 Service Unavailable", or "HTTP 599" for codes without a standard reason.
fn describe(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("HTTP {} {reason}", status.as_u16()),
        None => format!("HTTP {}", status.as_u16()),
    }
}

/// A response body, read chunk by chunk, from either transport.
trait BodyChunks {
    /// The next bytes of the body; `None` at its end.
    async fn next_chunk(&mut self) -> Result<Option<&[u8]>, Failure>;
}

/// The body of a response through reqwest.
struct ClientBody {
    response: reqwest::Response,
    /// The chunk last handed out.
    chunk: Bytes,
}

impl BodyChunks for ClientBody {
    async fn next_chunk(&mut self) -> Result<Option<&[u8]>, Failure> {
        match self.response.chunk().await {
            Ok(Some(chunk)) => {
                self.chunk = chunk;
                Ok(Some(&self.chunk))
            }
            Ok(None) => Ok(None),
            Err(error) => Err(Failure::from_error(&error)),
        }
    }
}

/// The `Location` header's text, if it has one.
fn location_of(headers: &HeaderMap) -> Option<String> {
    Some(headers.get(header::LOCATION)?.to_str().ok()?.to_owned())
}

/// `http://` and `https://` on a fresh connection: the requests [`fresh`] sends.
fn takes_fresh_path(url: &Url, reuse_connection: bool) -> bool {
    matches!(url.scheme(), "http" | "https") && !reuse_connection
}

/// The statuses that redirect (RFC 9110 §15.4); 300 and 304 do not say where to go.
fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

impl<'a> Hop<'a> {
    /// The request a redirect leads to, as browsers (and reqwest) make it: 303, and 301 or 302
    /// after a POST, turn into a bodiless GET (a HEAD stays HEAD); 307 and 308 repeat the
    /// request as it was. Credentials are not sent on to another origin, nor a `Host` the
    /// probe set for the first one.
    fn redirected(self, status: StatusCode, to: Url) -> Hop<'a> {
        let Hop {
            mut method,
            url,
            headers,
            mut body,
            redirects,
        } = self;
        let mut headers = headers.into_owned();
        let becomes_get = match status {
            StatusCode::SEE_OTHER => method != Method::HEAD,
            StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND => method == Method::POST,
            _ => false,
        };
        if becomes_get {
            method = Method::GET;
            body = None;
            for name in [
                header::CONTENT_TYPE,
                header::CONTENT_LENGTH,
                header::CONTENT_ENCODING,
                header::TRANSFER_ENCODING,
            ] {
                headers.remove(name);
            }
        }
        let same_origin = url.scheme() == to.scheme()
            && url.host_str() == to.host_str()
            && url.port_or_known_default() == to.port_or_known_default();
        if !same_origin {
            for name in [
                header::HOST,
                header::AUTHORIZATION,
                header::COOKIE,
                header::PROXY_AUTHORIZATION,
                header::WWW_AUTHENTICATE,
            ] {
                headers.remove(name);
            }
            headers.remove("cookie2");
        }
        Hop {
            method,
            url: Cow::Owned(to),
            headers: Cow::Owned(headers),
            body,
            redirects: redirects + 1,
        }
    }
}

/// Lets reqwest resolve through the probe's own DNS server. Failures keep their
/// `ResolveFailure` type inside reqwest's error chain, so they classify as `dns`.
struct ProbeResolver(HostResolver);

impl Resolve for ProbeResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let resolver = self.0.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let ips = resolver.lookup_ip(&host).await?;
            // Port 0: reqwest puts in the URL's port (or the scheme's default).
            let addrs: Addrs = Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

// `Checker` is shared between tasks; keep this true as fields change.
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<HttpChecker>();
};
