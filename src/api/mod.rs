//! What the running daemon serves: the unix admin socket for the query commands (and, later,
//! the read-only HTTP listener). May use every module above it, `daemon` included.

pub mod socket;
