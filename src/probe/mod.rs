//! Runs one check of one probe and turns whatever happens into a [`CheckResult`].
//!
//! A failed check is data, not an `Err`: every kind returns an [`Observation`], the timeout is
//! enforced here for all kinds alike, and error classes are decided in [`classify`] only.
//! May use `model` and `config`.

pub mod classify;
mod dns;
mod http;
mod tcp;
mod tls;

use std::{collections::HashMap, sync::Arc, time::Duration};

use futures_util::future::BoxFuture;
use jiff::Timestamp;
use tokio::time::Instant;

use crate::{
    config::{CheckSpec, ProbeSpec},
    model::{CertStatus, CheckResult, ErrorClass, Outcome, ProbeName},
};

/// Why a probe's checker could not be built (a local problem, not a failed check).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The HTTP client could not be built.
    #[error("probe {probe}: cannot build the HTTP client: {source}")]
    HttpClient {
        /// The probe.
        probe: ProbeName,
        /// What reqwest said.
        source: reqwest::Error,
    },
    /// The TLS configuration could not be built.
    #[error("probe {probe}: cannot set up TLS: {message}")]
    Tls {
        /// The probe.
        probe: ProbeName,
        /// What went wrong.
        message: String,
    },
    /// The probe came from evidence (a normalised configuration): it says what was promised,
    /// not what to check, so it cannot be run.
    #[error("probe {probe}: read from evidence, it has no check to run (its target is withheld)")]
    Withheld {
        /// The probe.
        probe: ProbeName,
    },
}

/// What a check of one kind observed, before timing and degradation are applied.
#[derive(Debug, Default)]
pub(crate) struct Observation {
    /// The failure, if the check failed.
    pub failure: Option<Failure>,
    /// The leaf certificate's expiry, when a TLS handshake completed.
    pub cert: Option<CertStatus>,
}

impl Observation {
    /// A passed check.
    pub fn passed(cert: Option<CertStatus>) -> Self {
        Observation {
            failure: None,
            cert,
        }
    }

    /// A failed check.
    pub fn failed(failure: Failure, cert: Option<CertStatus>) -> Self {
        Observation {
            failure: Some(failure),
            cert,
        }
    }
}

impl From<Failure> for Observation {
    fn from(failure: Failure) -> Self {
        Observation::failed(failure, None)
    }
}

/// A failed check: its class and a short explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    /// The SPEC §2 error class.
    pub class: ErrorClass,
    /// Short, single-line detail for humans.
    pub detail: String,
    /// The cause was this host's, not the target's (no file descriptor left, see
    /// [`classify::is_local_exhaustion`]): the check is `unknown`, not `down`.
    pub local: bool,
}

impl Failure {
    /// A failure of `class`.
    pub fn new(class: ErrorClass, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        Failure {
            class,
            local: classify::names_local_exhaustion(&detail),
            detail,
        }
    }

    /// A failure classified from an error value and its source chain.
    pub fn from_error(error: &(dyn std::error::Error + 'static)) -> Self {
        Failure {
            class: classify::classify(error),
            detail: classify::describe(error),
            local: classify::is_local_exhaustion(error),
        }
    }
}

/// What checkers of many probes share: TLS client configurations (building one reads the
/// system trust store, milliseconds each) and HTTP clients (each holds a connector, a pool and
/// a resolver). Sharing them changes nothing a check measures: clients keep no idle
/// connections, so every check still opens a fresh connection. Build one per configuration
/// load and hand it to every [`Checker::new`].
#[derive(Default)]
pub struct Toolkit {
    tls: std::sync::Mutex<HashMap<(bool, bool), Arc<rustls::ClientConfig>>>,
    http_clients: std::sync::Mutex<HashMap<http::ClientKey, reqwest::Client>>,
}

impl Toolkit {
    /// An empty toolkit; parts are built on first use.
    pub fn new() -> Self {
        Toolkit::default()
    }

    /// The TLS client configuration for `verify`, offering HTTP ALPN or none (raw TCP).
    fn tls_config(
        &self,
        verify: bool,
        http: bool,
    ) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
        let mut cache = self.tls.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(config) = cache.get(&(verify, http)) {
            return Ok(Arc::clone(config));
        }
        let alpn: &[&[u8]] = if http { &[b"h2", b"http/1.1"] } else { &[] };
        let config = Arc::new(tls::client_config(verify, alpn)?);
        cache.insert((verify, http), Arc::clone(&config));
        Ok(config)
    }
}

/// How the detail of a check that failed for a local reason begins.
pub const LOCAL_CAUSE: &str = "local cause, not the target: ";

/// Longest a probe's own `dns_server` may take to resolve the target's name.
const MAX_DNS_TIMEOUT: Duration = Duration::from_secs(5);

/// How long past the deadline a kind that stops itself there may take to report (see
/// [`Checker::check`]); it needs only to be polled once more.
const SELF_STOP_GRACE: Duration = Duration::from_millis(50);

/// The kind-specific checker, boxed: the HTTP one (headers, URL, regex) is several times the
/// size of the others, and an enum is as large as its largest variant, 10,000 times over.
enum KindChecker {
    Http(Box<http::HttpChecker>),
    Tcp(Box<tcp::TcpChecker>),
    Dns(Box<dns::DnsChecker>),
}

/// A ready-to-run check of one probe; built once per probe, run many times.
pub struct Checker {
    name: ProbeName,
    timeout: Duration,
    degraded_after: Option<Duration>,
    kind: KindChecker,
}

impl Checker {
    /// Prepares the checks of `spec` (HTTP client, TLS settings, resolver), sharing what it can
    /// through `toolkit`.
    pub fn new(spec: &ProbeSpec, toolkit: &Toolkit) -> Result<Self, SetupError> {
        // A dead `dns_server` should fail as `dns`, not run into the check's own timeout.
        let dns_timeout = (spec.timeout / 2).min(MAX_DNS_TIMEOUT);
        let kind = match &spec.check {
            CheckSpec::Http(http) => KindChecker::Http(Box::new(http::HttpChecker::new(
                &spec.name,
                http,
                dns_timeout,
                toolkit,
            )?)),
            CheckSpec::Tcp(tcp) => KindChecker::Tcp(Box::new(tcp::TcpChecker::new(
                &spec.name,
                tcp,
                spec.timeout,
                dns_timeout,
                toolkit,
            )?)),
            CheckSpec::Dns(dns) => {
                KindChecker::Dns(Box::new(dns::DnsChecker::new(dns, spec.timeout)))
            }
            CheckSpec::Withheld(_) => {
                return Err(SetupError::Withheld {
                    probe: spec.name.clone(),
                });
            }
        };
        Ok(Checker {
            name: spec.name.clone(),
            timeout: spec.timeout,
            degraded_after: spec.degraded_after,
            kind,
        })
    }

    /// The probe this checker runs.
    pub fn name(&self) -> &ProbeName {
        &self.name
    }

    /// Runs the check once. Never takes longer than the probe's timeout (plus scheduling noise).
    pub async fn check(&self) -> CheckResult {
        let at = Timestamp::now();
        let started = Instant::now();
        let deadline = started + self.timeout;
        // Each kind's future on the heap, sized for that kind: an HTTP request in flight takes
        // kilobytes that a TCP or DNS check must not allocate (and touch) too.
        let (mut run, ends_itself): (BoxFuture<'_, Observation>, bool) = match &self.kind {
            KindChecker::Http(c) => (Box::pin(c.check((deadline, self.timeout))), true),
            KindChecker::Tcp(c) => (Box::pin(c.check(deadline)), true),
            KindChecker::Dns(c) => (Box::pin(c.check()), false),
        };
        let observation = match tokio::time::timeout_at(deadline, &mut run).await {
            Ok(observation) => observation,
            // A kind that stops itself at the deadline says more than "timeout" (a hung
            // resolver is `dns`, a wrong answer on an open connection `assertion`). Its timer
            // is due with this one but may be woken a moment later (timers live in one wheel
            // per worker thread): it gets that moment.
            Err(_) if ends_itself => tokio::time::timeout(SELF_STOP_GRACE, &mut run)
                .await
                .unwrap_or_else(|_| self.timed_out()),
            Err(_) => self.timed_out(),
        };
        let latency = started.elapsed();
        self.result(at, latency, observation)
    }

    /// The observation of a check the probe's timeout ended.
    fn timed_out(&self) -> Observation {
        let within = humantime::format_duration(self.timeout);
        Failure::new(ErrorClass::Timeout, format!("no answer within {within}")).into()
    }

    fn result(&self, at: Timestamp, latency: Duration, observation: Observation) -> CheckResult {
        let mut result = match observation.failure {
            Some(failure) if failure.local => CheckResult::local_failure(
                self.name.clone(),
                at,
                latency,
                failure.class,
                format!("{LOCAL_CAUSE}{}", failure.detail),
            ),
            Some(failure) => CheckResult::failure(
                self.name.clone(),
                at,
                latency,
                failure.class,
                failure.detail,
            ),
            None => {
                let slow = self.degraded_after.is_some_and(|limit| latency > limit);
                let outcome = if slow { Outcome::Degraded } else { Outcome::Up };
                let mut result = CheckResult::success(self.name.clone(), at, latency, outcome);
                if slow {
                    result.detail = format!("slower than {}", fmt_duration(self.degraded_after));
                }
                result
            }
        };
        result.cert = observation.cert;
        result
    }
}

fn fmt_duration(duration: Option<Duration>) -> String {
    duration.map_or_else(String::new, |d| humantime::format_duration(d).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_read_from_evidence_has_no_checker() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let config = crate::config::rich_config(dir.path());
        let normalised = crate::config::NormalisedConfig::from_config(&config).expect("normal");
        let config = normalised.into_config().expect("a configuration");
        for spec in &config.probes {
            let refused = Checker::new(spec, &Toolkit::new()).err();
            assert!(
                matches!(&refused, Some(SetupError::Withheld { probe }) if *probe == spec.name),
                "{:?}",
                refused.map(|e| e.to_string())
            );
        }
    }
}
