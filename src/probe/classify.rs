//! The one place that decides a failed check's [`ErrorClass`] (SPEC §2).
//!
//! Errors arrive as chains (reqwest or our own HTTP exchange → hyper → io → rustls, or our own
//! resolver failure); the innermost cause that means something decides, so "connection
//! refused" wrapped in three layers is still `connect`.

use std::{error::Error, io};

use crate::model::ErrorClass;

use super::{dns::ResolveFailure, http::ExchangeError};

/// Classifies an error by the most specific cause in its source chain.
pub fn classify(error: &(dyn Error + 'static)) -> ErrorClass {
    for cause in chain(error) {
        if cause.is::<ResolveFailure>() {
            return ErrorClass::Dns;
        }
        if cause.is::<rustls::Error>() {
            return ErrorClass::Tls;
        }
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            if is_tls_handshake_eof(io) {
                return ErrorClass::Tls;
            }
            if let Some(class) = classify_io_kind(io.kind()) {
                return class;
            }
        }
    }
    // No decisive low-level cause: fall back to what the outer layers say.
    if let Some(exchange) = chain(error).find_map(|e| e.downcast_ref::<ExchangeError>()) {
        return match exchange {
            ExchangeError::Response { .. } => ErrorClass::Protocol,
            ExchangeError::Io { .. } | ExchangeError::Body { .. } => ErrorClass::Io,
        };
    }
    if let Some(request) = chain(error).find_map(|e| e.downcast_ref::<reqwest::Error>()) {
        if request.is_timeout() {
            return ErrorClass::Timeout;
        }
        if request.is_redirect() {
            return ErrorClass::Protocol;
        }
        let text = describe(error);
        // reqwest's own getaddrinfo resolver reports failures only as text.
        if text.contains("dns error") || text.contains("failed to lookup address") {
            return ErrorClass::Dns;
        }
        if request.is_connect() {
            return ErrorClass::Connect;
        }
        if request.is_body() || request.is_decode() {
            return ErrorClass::Io;
        }
        return ErrorClass::Protocol;
    }
    ErrorClass::Io
}

/// Whether `error` says this host ran out of something a check needs (file descriptors:
/// `EMFILE`, `ENFILE`) rather than anything about the target: such a check proves nothing
/// and is recorded `unknown` with its local cause, never `down`.
pub fn is_local_exhaustion(error: &(dyn Error + 'static)) -> bool {
    chain(error).any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .and_then(io::Error::raw_os_error)
            .is_some_and(|code| code == libc::EMFILE || code == libc::ENFILE)
            || names_local_exhaustion(&cause.to_string())
    })
}

/// Whether an error's text names a local exhaustion, for causes that reach us only as text
/// (resolver errors flatten their I/O errors into messages).
pub fn names_local_exhaustion(text: &str) -> bool {
    text.contains("Too many open files")
}

/// Classifies a bare I/O error kind; `None` when the kind says nothing specific.
pub fn classify_io_kind(kind: io::ErrorKind) -> Option<ErrorClass> {
    use io::ErrorKind as K;
    match kind {
        K::ConnectionRefused
        | K::HostUnreachable
        | K::NetworkUnreachable
        | K::AddrNotAvailable
        | K::NetworkDown => Some(ErrorClass::Connect),
        K::TimedOut => Some(ErrorClass::Timeout),
        K::ConnectionReset
        | K::ConnectionAborted
        | K::BrokenPipe
        | K::UnexpectedEof
        | K::WriteZero => Some(ErrorClass::Io),
        _ => None,
    }
}

/// A peer that hangs up during the TLS handshake (a plaintext service on a TLS port, a server
/// refusing our protocol versions or SNI by closing) reaches us from tokio-rustls, for both the
/// HTTP and TCP probes, only as a bare `UnexpectedEof` with this message; it is a handshake
/// failure, not a mid-answer I/O problem.
fn is_tls_handshake_eof(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::UnexpectedEof && error.to_string() == "tls handshake eof"
}

/// A short single-line description: the outermost message plus the innermost cause.
pub fn describe(error: &(dyn Error + 'static)) -> String {
    let outer = error.to_string();
    let inner = chain(error).last().map(ToString::to_string);
    match inner {
        Some(inner) if inner != outer && !outer.contains(&inner) => format!("{outer}: {inner}"),
        _ => outer,
    }
}

/// The error and its causes, outermost first. `io::Error` hides its payload from `source()`,
/// so the payload is visited explicitly.
fn chain<'a>(error: &'a (dyn Error + 'static)) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    let mut next = Some(error);
    std::iter::from_fn(move || {
        let current = next?;
        next = current
            .downcast_ref::<io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn Error + 'static))
            .or_else(|| current.source());
        Some(current)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] io::Error);

    #[test]
    fn refused_inside_layers_is_connect() {
        let err = Outer(io::Error::from(io::ErrorKind::ConnectionRefused));
        assert_eq!(classify(&err), ErrorClass::Connect);
    }

    #[test]
    fn rustls_error_inside_io_is_tls() {
        let err = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::Expired),
        );
        assert_eq!(classify(&err), ErrorClass::Tls);
    }

    #[test]
    fn peer_hanging_up_mid_handshake_is_tls() {
        let err = Outer(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "tls handshake eof",
        ));
        assert_eq!(classify(&err), ErrorClass::Tls);
        let err = Outer(io::Error::from(io::ErrorKind::UnexpectedEof));
        assert_eq!(classify(&err), ErrorClass::Io);
    }

    #[test]
    fn running_out_of_descriptors_is_local() {
        for code in [libc::EMFILE, libc::ENFILE] {
            let err = Outer(io::Error::from_raw_os_error(code));
            assert!(is_local_exhaustion(&err), "{code}");
        }
        let flattened = io::Error::other("io error: Too many open files (os error 24)");
        assert!(is_local_exhaustion(&flattened));
        let refused = Outer(io::Error::from(io::ErrorKind::ConnectionRefused));
        assert!(!is_local_exhaustion(&refused));
    }

    #[test]
    fn unknown_errors_are_io() {
        let err = io::Error::other("weird");
        assert_eq!(classify(&err), ErrorClass::Io);
    }
}
