//! What the running daemon serves: the unix admin socket for the query commands, and the
//! read-only HTTP listener (status page, badges, JSON API, metrics). May use every module
//! above it, `daemon` included.

mod accept;
pub mod access;
pub mod http;
pub mod limits;
pub mod socket;
