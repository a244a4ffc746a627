//! Evidence a client can check (SPEC §8): the Merkle log over the ledger's record, signed
//! checkpoints, signed reports, evidence bundles and their offline verification.
//!
//! May use `model`, `config`, `ledger`, `report` and `query`; never `daemon` or `api`, so that
//! `upledger verify` runs with no ledger, no daemon and no network.

pub mod key;
pub mod note;
pub mod sshsig;
