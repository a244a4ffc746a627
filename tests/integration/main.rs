//! Integration tests: the compiled `upledger` binary against real servers on loopback.
//!
//! One test binary (fast to link); `support/` has the loopback HTTP, TCP and DNS servers and a
//! small builder around the binary. Tests never reach beyond 127.0.0.1 / ::1, and never resolve
//! names through the system resolver (which is not on loopback here).

mod support;

mod access;
mod alerts;
mod check_dns;
mod check_http;
mod check_tcp;
mod clock_step;
mod corrupt;
mod daemon;
mod desktop;
mod disk_full;
mod evidence;
mod evidence_vectors;
mod fsck;
mod habits;
mod http;
mod hung_resolver;
mod import;
mod keygen;
mod listener_abuse;
mod locations;
mod month_close;
mod page;
mod replication;
mod report;
mod restart;
mod sla_terms;
mod stop;
mod systemd;
mod validate;
mod witness;
