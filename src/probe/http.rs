//! The HTTP(S) check: one request, its status, and assertions on a bounded prefix of the body.
//!
//! Clients are shared between probes with the same settings but never keep idle connections, so every check pays
//! for (and measures) a fresh DNS lookup, connect and TLS handshake, as a new visitor would;
//! only probes that say `reuse_connection = true` share a client that keeps them.
//! The overall timeout is the caller's; this module only says what happened.
//! May use `model`, `config` and the sibling probe modules.

use std::{net::SocketAddr, time::Duration};

use regex::Regex;
use reqwest::{
    Client, Method, StatusCode, Url,
    dns::{Addrs, Name, Resolve, Resolving},
    header::HeaderMap,
    redirect,
    tls::TlsInfo,
};

use super::{Failure, Observation, SetupError, Toolkit, dns::HostResolver, tcp::excerpt, tls};
use crate::{
    config::{HttpSpec, StatusMatch},
    model::{CertStatus, ErrorClass, ProbeName},
};

/// Most redirects followed before the check fails with class `protocol`.
const MAX_REDIRECTS: usize = 10;

/// Sent unless the probe sets its own `User-Agent`, so operators can recognise (and allow-list)
/// the monitor in their logs.
const USER_AGENT: &str = concat!("upledger/", env!("CARGO_PKG_VERSION"));

/// The settings that make two probes' HTTP clients different.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ClientKey {
    follow_redirects: bool,
    tls_verify: bool,
    dns_server: Option<SocketAddr>,
    dns_timeout: Duration,
    reuse_connection: bool,
}

/// A client that never keeps idle connections (every check connects afresh) unless the probes
/// it serves say `reuse_connection`, ignores proxy variables, reports the peer certificate
/// and, with a `dns_server`, resolves through it.
fn build_client(key: &ClientKey, tls: rustls::ClientConfig) -> Result<Client, reqwest::Error> {
    let redirects = if key.follow_redirects {
        redirect::Policy::limited(MAX_REDIRECTS)
    } else {
        redirect::Policy::none()
    };
    let mut builder = Client::builder()
        .tls_backend_preconfigured(tls)
        .tls_info(true)
        .no_proxy()
        .pool_max_idle_per_host(if key.reuse_connection { usize::MAX } else { 0 })
        .redirect(redirects)
        .user_agent(USER_AGENT);
    if let Some(server) = key.dns_server {
        builder = builder.dns_resolver(ProbeResolver(HostResolver::new(server, key.dns_timeout)));
    }
    builder.build()
}

/// A prepared HTTP check of one probe.
pub(crate) struct HttpChecker {
    client: Client,
    /// The method, or the configured text when it is not a valid HTTP method.
    method: Result<Method, String>,
    url: Url,
    headers: HeaderMap,
    body: Option<String>,
    expect_status: Vec<StatusMatch>,
    body_contains: Option<String>,
    body_not_contains: Option<String>,
    body_regex: Option<Regex>,
    max_body_bytes: u64,
    cert_expiry_warn: Duration,
}

impl HttpChecker {
    /// Takes a client for the probe's TLS, redirect and resolver settings from `toolkit` and
    /// validates its request headers.
    pub(crate) fn new(
        probe: &ProbeName,
        spec: &HttpSpec,
        dns_timeout: Duration,
        toolkit: &Toolkit,
    ) -> Result<Self, SetupError> {
        let key = ClientKey {
            follow_redirects: spec.follow_redirects,
            tls_verify: spec.tls_verify,
            dns_server: spec.dns_server,
            dns_timeout,
            reuse_connection: spec.reuse_connection,
        };
        let http_error = |source| SetupError::HttpClient {
            probe: probe.clone(),
            source,
        };
        let client = {
            let mut clients = toolkit
                .http_clients
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            match clients.get(&key) {
                Some(client) => client.clone(),
                None => {
                    let tls =
                        toolkit
                            .tls_config(spec.tls_verify, true)
                            .map_err(|e| SetupError::Tls {
                                probe: probe.clone(),
                                message: e.to_string(),
                            })?;
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

        Ok(HttpChecker {
            method,
            url: template.url().clone(),
            headers: template.headers().clone(),
            client,
            body: spec.body.clone(),
            expect_status: spec.expect_status.clone(),
            body_contains: spec.body_contains.clone(),
            body_not_contains: spec.body_not_contains.clone(),
            body_regex: spec.body_regex.clone(),
            max_body_bytes: spec.max_body_bytes,
            cert_expiry_warn: spec.cert_expiry_warn,
        })
    }

    /// Sends the request, then judges the status and the body prefix.
    pub(crate) async fn check(&self) -> Observation {
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
        let mut request = self
            .client
            .request(method, self.url.clone())
            .headers(self.headers.clone());
        if let Some(body) = &self.body {
            request = request.body(body.clone());
        }
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(error) => return Failure::from_error(&error).into(),
        };
        let cert = self.cert_of(response.extensions().get::<TlsInfo>());

        let status = response.status();
        if !self.status_expected(status) {
            return Observation::failed(
                Failure::new(ErrorClass::HttpStatus, describe(status)),
                cert,
            );
        }

        let body = match self.read_body(&mut response).await {
            Ok(body) => body,
            Err(error) => return Observation::failed(Failure::from_error(&error), cert),
        };
        match self.assert_body(&body) {
            Some(failure) => Observation::failed(failure, cert),
            None => Observation::passed(cert),
        }
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
    async fn read_body(&self, response: &mut reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
        let limit = usize::try_from(self.max_body_bytes).unwrap_or(usize::MAX);
        let keep = self.wants_body();
        let mut body = Vec::new();
        let mut read = 0usize;
        while read < limit {
            let Some(chunk) = response.chunk().await? else {
                break;
            };
            let take = chunk.len().min(limit - read);
            if keep {
                body.extend_from_slice(&chunk[..take]);
            }
            read += take;
        }
        Ok(body)
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
