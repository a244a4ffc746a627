//! Who may do what through the admin socket (issue 19 item 1).
//!
//! Two classes of requests: *read* ones (status, history, report, incidents, export, alerts
//! list, exclusions) for anyone who can connect — the socket is 0660, owned by the daemon's
//! user and `[daemon].socket_group` — and *admin* ones (exclude and revoke, import, alerts
//! test: anything that writes) only for root, the daemon's own user, or members of
//! `[daemon].admin_group`. The peer is known from `SO_PEERCRED`, so no one can claim to be
//! someone else. May use `config`, `ledger` (for [`Requester`]) and the socket's `Request`.

use nix::unistd::{Gid, Uid, User, getgrouplist};
use tokio::net::UnixStream;

use super::socket::Request;
use crate::{config::DaemonSpec, ledger::Requester};

/// What a request may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Reads the ledger or the daemon's state.
    Read,
    /// Writes to the ledger or acts (sends an alert).
    Admin,
}

impl Class {
    /// The class of `request`.
    pub fn of(request: &Request) -> Class {
        match request {
            Request::Import { .. }
            | Request::Exclude { .. }
            | Request::Revoke { .. }
            | Request::AlertTest { .. }
            // The vendor's key vouches for what it signs: signing is an act of the vendor.
            | Request::SignedReport { .. }
            | Request::Evidence { .. }
            // Changes what the daemon checks, as SIGHUP would.
            | Request::Reload => Class::Admin,
            Request::Status
            | Request::History { .. }
            | Request::Export { .. }
            | Request::Report { .. }
            | Request::Alerts { .. }
            | Request::Incidents { .. }
            | Request::Exclusions { .. }
            | Request::Identity => Class::Read,
        }
    }
}

/// The process on the other end of the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Its user id.
    pub uid: u32,
    /// Its primary group id.
    pub gid: u32,
}

impl Peer {
    /// The peer of `stream`, from the kernel (`SO_PEERCRED`).
    pub fn of(stream: &UnixStream) -> std::io::Result<Peer> {
        let cred = stream.peer_cred()?;
        Ok(Peer {
            uid: cred.uid(),
            gid: cred.gid(),
        })
    }

    /// The peer as it is recorded with what it changes.
    pub fn requester(&self) -> Requester {
        requester(self.uid)
    }

    /// Whether the peer's user belongs to group `gid`: as its primary group (of the
    /// connection or of its account) or as a supplementary one in the group database.
    fn in_group(&self, gid: u32) -> bool {
        if self.gid == gid {
            return true;
        }
        let Ok(Some(user)) = User::from_uid(Uid::from_raw(self.uid)) else {
            return false;
        };
        let Ok(name) = std::ffi::CString::new(user.name) else {
            return false;
        };
        getgrouplist(&name, user.gid)
            .map(|groups| groups.contains(&Gid::from_raw(gid)))
            .unwrap_or(false)
    }
}

/// The user `uid`, named when the host knows the name.
pub fn requester(uid: u32) -> Requester {
    let name = User::from_uid(Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|user| user.name);
    Requester { uid, name }
}

/// Whether `peer` may make a request of `class` to a daemon running as `daemon_uid`; when not,
/// the message says which class it is and what would allow it.
pub fn authorize(
    class: Class,
    peer: &Peer,
    daemon: &DaemonSpec,
    daemon_uid: u32,
) -> Result<(), String> {
    if class == Class::Read || peer.uid == 0 || peer.uid == daemon_uid {
        return Ok(());
    }
    if let Some(group) = &daemon.admin_group
        && peer.in_group(group.gid)
    {
        return Ok(());
    }
    let who = peer.requester();
    let allowed = match &daemon.admin_group {
        Some(group) => format!(
            "root, the daemon's user ({}) or members of group {} ([daemon].admin_group)",
            requester(daemon_uid),
            group.name
        ),
        None => format!(
            "root or the daemon's user ({}); set [daemon].admin_group to allow a group",
            requester(daemon_uid)
        ),
    };
    Err(format!(
        "refused: this is an admin request (it changes the ledger or sends alerts), which \
         only {allowed} may make; {who} may make read requests only"
    ))
}
