//! The daemon's file descriptors: how many there are (the soft `RLIMIT_NOFILE`, raised to the
//! hard limit at start) and how many of them the listeners may hold.
//!
//! Every connection a listener holds is a descriptor that a check or the ledger cannot have. A
//! fault trial held 1,100 idle connections under `ulimit -n 1024` and every check failed with
//! "Too many open files". So each listener gets a connection cap, a fixed share of the limit
//! ([`ListenerCaps::for_open_files`]); the rest stays reserved for checks (one or two descriptors
//! each while in flight), the ledger's files and the daemon's own sockets. May use nothing but
//! the standard library and rustix.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// The soft limit aimed at when the hard limit is unlimited: Linux refuses more than
/// `fs.nr_open` (1,048,576 by default) anyway.
const UNLIMITED_TARGET: u64 = 1 << 20;

/// The open-file limit as found at start and as left after raising it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFileLimit {
    /// The soft limit the process was started with.
    pub started_with: u64,
    /// The soft limit now in force (the hard limit, when raising it worked).
    pub soft: u64,
    /// The hard limit; `None` when unlimited.
    pub hard: Option<u64>,
}

/// Why the soft limit could not be raised.
#[derive(Debug, thiserror::Error)]
#[error("cannot raise the open-file limit from {from} to {to}: {source}")]
pub struct RaiseError {
    /// The soft limit left in force.
    pub from: u64,
    /// The soft limit tried.
    pub to: u64,
    /// What the system said.
    pub source: std::io::Error,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (a service manager often starts daemons
/// with a soft limit of 1,024 and a hard one far above it). `Err` leaves the old limit in force
/// and says which; the daemon runs on with it.
pub fn raise_open_file_limit() -> Result<OpenFileLimit, RaiseError> {
    let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
    let started_with = current.unwrap_or(UNLIMITED_TARGET);
    let target = maximum.unwrap_or(UNLIMITED_TARGET);
    if target <= started_with {
        return Ok(OpenFileLimit {
            started_with,
            soft: started_with,
            hard: maximum,
        });
    }
    let raised = Rlimit {
        current: Some(target),
        maximum,
    };
    setrlimit(Resource::Nofile, raised).map_err(|e| RaiseError {
        from: started_with,
        to: target,
        source: e.into(),
    })?;
    Ok(OpenFileLimit {
        started_with,
        soft: target,
        hard: maximum,
    })
}

/// The soft open-file limit in force now.
pub fn open_file_limit() -> u64 {
    getrlimit(Resource::Nofile)
        .current
        .unwrap_or(UNLIMITED_TARGET)
}

/// How many connections each listener may hold at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerCaps {
    /// Connections to the HTTP listener.
    pub http: usize,
    /// Connections to the admin socket.
    pub socket: usize,
}

impl ListenerCaps {
    /// The HTTP listener may hold a quarter of the descriptors (at most 4,096: a status page
    /// needs no more), the admin socket a sixty-fourth (4 to 64: it serves the operator's CLI);
    /// at least five eighths stay for checks and the ledger.
    pub fn for_open_files(limit: u64) -> ListenerCaps {
        let share = |divisor: u64, min: u64, max: u64| {
            usize::try_from((limit / divisor).clamp(min, max)).unwrap_or(usize::MAX)
        };
        ListenerCaps {
            http: share(4, 8, 4_096),
            socket: share(64, 4, 64),
        }
    }

    /// The caps for the limit in force now.
    pub fn current() -> ListenerCaps {
        ListenerCaps::for_open_files(open_file_limit())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_leave_most_descriptors_to_checks() {
        for limit in [64, 256, 1_024, 4_096, 65_536, 1 << 20] {
            let caps = ListenerCaps::for_open_files(limit);
            let held = (caps.http + caps.socket) as u64;
            assert!(held * 8 <= limit * 3, "{limit}: {caps:?}");
            assert!(caps.http >= 8 && caps.socket >= 4, "{limit}: {caps:?}");
        }
        assert_eq!(
            ListenerCaps::for_open_files(1_024),
            ListenerCaps {
                http: 256,
                socket: 16
            }
        );
        assert_eq!(ListenerCaps::for_open_files(1 << 20).http, 4_096);
    }

    #[test]
    fn raising_reaches_the_hard_limit_and_is_idempotent() {
        let first = raise_open_file_limit().expect("raising to the hard limit is allowed");
        assert_eq!(Some(first.soft), first.hard.or(Some(first.soft)));
        assert_eq!(open_file_limit(), first.soft);
        let again = raise_open_file_limit().expect("again");
        assert_eq!(again.started_with, again.soft);
    }
}
