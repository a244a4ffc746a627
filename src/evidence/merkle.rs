//! The Merkle log's tree (RFC 9162 §2.1, the same hashing as RFC 6962): leaf and node hashes,
//! the tree head, inclusion and consistency proofs, and their verification.
//!
//! The log is stored (in sled, by the ledger) as *perfect subtree hashes*: node
//! `(level, index)` is the hash of leaves `[index·2^level, (index+1)·2^level)`, written once
//! the last of those leaves is appended and never changed after. Every function that reads
//! the log goes through [`NodeSource`] and reads O(log n) nodes, because a log gains a leaf per
//! probe per hour for years (up to ~10^8 leaves) and an append, a checkpoint or a proof must
//! not cost more as it grows. The verification side reads nothing: it is what
//! `upledger verify` runs on a bundle, with no ledger at hand.
//!
//! Uses only `aws-lc-rs` (SHA-256) and `thiserror`; nothing else in the crate.

use aws_lc_rs::digest::{Context, SHA256};

/// A SHA-256 hash: a leaf hash, a subtree hash or a tree head.
pub type Hash = [u8; 32];

/// The hash of one log entry: `SHA-256(0x00 ‖ leaf)` (RFC 9162 §2.1.1). The prefix keeps a
/// leaf from ever hashing like an interior node, so no proof can pass one off as the other.
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    sha256(&[&[0x00], leaf])
}

/// The hash of an interior node: `SHA-256(0x01 ‖ left ‖ right)` (RFC 9162 §2.1.1).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    sha256(&[&[0x01], left, right])
}

/// The tree head of the empty log, `MTH({}) = SHA-256()` (RFC 9162 §2.1.1).
pub fn empty_root() -> Hash {
    sha256(&[])
}

fn sha256(parts: &[&[u8]]) -> Hash {
    let mut context = Context::new(&SHA256);
    for part in parts {
        context.update(part);
    }
    let mut hash = [0; 32];
    hash.copy_from_slice(context.finish().as_ref());
    hash
}

/// Where the stored perfect-subtree hashes come from: sled in the daemon, a [`MemoryTree`]
/// in tests and in the verifier.
pub trait NodeSource {
    /// Why a node could not be read (an I/O error, or a node that is not stored).
    type Error;

    /// The hash of the perfect subtree over leaves `[index·2^level, (index+1)·2^level)`.
    /// Only nodes whose leaves all exist are ever asked for.
    fn node(&self, level: u8, index: u64) -> Result<Hash, Self::Error>;
}

impl<S: NodeSource + ?Sized> NodeSource for &S {
    type Error = S::Error;

    fn node(&self, level: u8, index: u64) -> Result<Hash, Self::Error> {
        (**self).node(level, index)
    }
}

/// The nodes to store when the leaf whose hash is `leaf` is appended to a log of `size`
/// leaves: `(0, size, leaf)`, then every perfect subtree the new leaf completes, bottom up,
/// as `(level, index, hash)`.
///
/// The new leaf completes one subtree per trailing one bit of `size`; each needs its left
/// sibling, so this reads at most log2(size + 1) nodes.
pub fn appended_nodes<S: NodeSource>(
    size: u64,
    leaf: Hash,
    source: &S,
) -> Result<Vec<(u8, u64, Hash)>, S::Error> {
    let mut nodes = vec![(0, size, leaf)];
    let (mut level, mut index, mut hash) = (0u8, size, leaf);
    while index & 1 == 1 {
        let left = source.node(level, index - 1)?;
        hash = node_hash(&left, &hash);
        level += 1;
        index >>= 1;
        nodes.push((level, index, hash));
    }
    Ok(nodes)
}

/// The tree head `MTH(D[0:size])` (RFC 9162 §2.1.1) of the log's first `size` leaves; reads
/// one node per one bit of `size`.
pub fn root<S: NodeSource>(size: u64, source: &S) -> Result<Hash, S::Error> {
    subtree_hash(0, size, source)
}

/// Why a proof could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ProveError<E> {
    /// The leaf is not in the tree the proof is asked against.
    #[error("leaf index {index} is not in a tree of {size} leaves")]
    IndexOutOfRange {
        /// The leaf asked for.
        index: u64,
        /// The size of the tree asked for.
        size: u64,
    },
    /// A consistency proof was asked from a larger tree to a smaller one.
    #[error(
        "no consistency proof from tree size {old} to the smaller size {new}: a log only grows"
    )]
    SizesOutOfOrder {
        /// The earlier size asked for.
        old: u64,
        /// The later size asked for.
        new: u64,
    },
    /// The node source failed (for sled, an I/O error or a tree larger than the log).
    #[error(transparent)]
    Source(E),
}

/// The inclusion proof `PATH(index, D[0:size])` of RFC 9162 §2.1.3.1: the sibling hashes from
/// the leaf up to the root, deepest first.
///
/// Reads at most 2·log2(size) nodes: the siblings on the way down are perfect subtrees (one
/// node each) except, at most once, a right-hand part of the tree's ragged right edge.
pub fn inclusion_proof<S: NodeSource>(
    index: u64,
    size: u64,
    source: &S,
) -> Result<Vec<Hash>, ProveError<S::Error>> {
    if index >= size {
        return Err(ProveError::IndexOutOfRange { index, size });
    }
    // Walk the RFC's recursion from the root down, recording each sibling; the proof lists
    // them from the leaf up, so reverse at the end.
    let (mut start, mut end) = (0, size);
    let mut path = Vec::new();
    while end - start > 1 {
        let k = split(end - start);
        if index < start + k {
            path.push(subtree_hash(start + k, end, source).map_err(ProveError::Source)?);
            end = start + k;
        } else {
            path.push(subtree_hash(start, start + k, source).map_err(ProveError::Source)?);
            start += k;
        }
    }
    path.reverse();
    Ok(path)
}

/// The consistency proof `PROOF(old, D[0:new])` of RFC 9162 §2.1.4.1, which shows the tree
/// of `new` leaves extends the tree of `old` leaves.
///
/// The RFC defines it for `0 < old < new`; for `old == new` (nothing to prove) and for
/// `old == 0` (every tree extends the empty one) the proof is empty, which is what
/// [`verify_consistency`] expects. Reads at most 2·log2(new) nodes.
pub fn consistency_proof<S: NodeSource>(
    old: u64,
    new: u64,
    source: &S,
) -> Result<Vec<Hash>, ProveError<S::Error>> {
    if old > new {
        return Err(ProveError::SizesOutOfOrder { old, new });
    }
    if old == 0 || old == new {
        return Ok(Vec::new());
    }
    // SUBPROOF(m, D[start:end], b) unrolled: `old` stays an absolute leaf count, so the RFC's
    // `m == n` is `old == end`, and `m <= k` is `old <= start + k`.
    let (mut start, mut end) = (0, new);
    let mut whole_old_tree = true;
    let mut path = Vec::new();
    loop {
        if old == end {
            if !whole_old_tree {
                path.push(subtree_hash(start, end, source).map_err(ProveError::Source)?);
            }
            break;
        }
        let k = split(end - start);
        if old <= start + k {
            path.push(subtree_hash(start + k, end, source).map_err(ProveError::Source)?);
            end = start + k;
        } else {
            path.push(subtree_hash(start, start + k, source).map_err(ProveError::Source)?);
            start += k;
            whole_old_tree = false;
        }
    }
    path.reverse();
    Ok(path)
}

/// The largest power of two strictly below `n` (for `n >= 2`): where RFC 9162 splits a tree
/// of `n` leaves into its left and right subtrees.
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// `MTH(D[start:end])` for a range the RFC's recursion visits (`start` a multiple of a power
/// of two at least `end - start`). The recursion splits off the largest power of two each
/// time, so the range is tiled by one perfect subtree per one bit of its width, largest
/// first, and its hash is those tiles folded from the right: one read per tile.
fn subtree_hash<S: NodeSource>(start: u64, end: u64, source: &S) -> Result<Hash, S::Error> {
    let width = end - start;
    let mut tiles = Vec::with_capacity(width.count_ones() as usize);
    let mut at = start;
    for level in (0..64u8).rev() {
        if (width >> level) & 1 == 1 {
            tiles.push(source.node(level, at >> level)?);
            at += 1 << level;
        }
    }
    let Some(mut hash) = tiles.pop() else {
        return Ok(empty_root());
    };
    while let Some(left) = tiles.pop() {
        hash = node_hash(&left, &hash);
    }
    Ok(hash)
}

/// Why a proof does not hold. A client reads these, so each names what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The proof is for a leaf the tree does not have.
    #[error("leaf index {index} is not in a tree of {size} leaves")]
    IndexOutOfRange {
        /// The leaf the proof claims.
        index: u64,
        /// The size of the tree the proof claims.
        size: u64,
    },
    /// The "later" tree is smaller than the earlier one.
    #[error("tree size {new} is smaller than the earlier size {old}: a log only grows")]
    SizesOutOfOrder {
        /// The earlier size.
        old: u64,
        /// The later size.
        new: u64,
    },
    /// The proof has the wrong number of hashes for the sizes (and index) it claims.
    #[error("wrong proof length: the proof has {found} hashes where {expected} are needed")]
    WrongProofLength {
        /// How many hashes a proof for these sizes has.
        expected: usize,
        /// How many the proof has.
        found: usize,
    },
    /// The proof leads to another root than the one it is checked against.
    #[error(
        "the proof gives root {} for tree size {size} but the checkpoint says {}",
        to_hex(.computed),
        to_hex(.claimed)
    )]
    RootMismatch {
        /// The tree size whose root did not match.
        size: u64,
        /// The root the proof leads to.
        computed: Hash,
        /// The root it was checked against.
        claimed: Hash,
    },
    /// Two tree heads of the same size differ: the log has been forked or rewritten.
    #[error(
        "two different roots for tree size {size}: {} and {}",
        to_hex(.old),
        to_hex(.new)
    )]
    ConflictingRoots {
        /// The size both tree heads claim.
        size: u64,
        /// The earlier tree head's root.
        old: Hash,
        /// The later tree head's root.
        new: Hash,
    },
}

/// Checks that the leaf whose hash is `leaf` is leaf number `index` of the tree of `size`
/// leaves whose root is `root`, by the algorithm of RFC 9162 §2.1.3.2.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let wrong_length = ProofError::WrongProofLength {
        expected: path_length(index, size - 1),
        found: proof.len(),
    };
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return Err(wrong_length);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(wrong_length);
    }
    if r != *root {
        return Err(ProofError::RootMismatch {
            size,
            computed: r,
            claimed: *root,
        });
    }
    Ok(())
}

/// Checks that the tree of `new_size` leaves with root `new_root` extends the tree of
/// `old_size` leaves with root `old_root`, by the algorithm of RFC 9162 §2.1.4.2.
///
/// That algorithm covers `0 < old_size < new_size`. Outside it, as [`consistency_proof`]
/// makes them, the proof must be empty and: for equal sizes the roots must be equal (two
/// roots for one size are a forked log); from size 0, `old_root` must be the empty tree's.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::SizesOutOfOrder {
            old: old_size,
            new: new_size,
        });
    }
    if old_size == 0 || old_size == new_size {
        if !proof.is_empty() {
            return Err(ProofError::WrongProofLength {
                expected: 0,
                found: proof.len(),
            });
        }
        if old_size == 0 && *old_root != empty_root() {
            return Err(ProofError::RootMismatch {
                size: 0,
                computed: empty_root(),
                claimed: *old_root,
            });
        }
        if old_size == new_size && old_root != new_root {
            return Err(ProofError::ConflictingRoots {
                size: old_size,
                old: *old_root,
                new: *new_root,
            });
        }
        return Ok(());
    }

    // Step 1 and 2: an empty proof fails; an old tree that is a perfect subtree is its own
    // first proof hash, which the RFC has the verifier prepend.
    let starts_with_old_root = old_size.is_power_of_two();
    let (mut fnode, mut snode) = (old_size - 1, new_size - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let wrong_length = ProofError::WrongProofLength {
        expected: path_length(fnode, snode) + usize::from(!starts_with_old_root),
        found: proof.len(),
    };
    let (first, rest) = if starts_with_old_root {
        (old_root, proof)
    } else {
        match proof.split_first() {
            Some(split) => split,
            None => return Err(wrong_length),
        }
    };
    // Steps 5 to 7: fr rebuilds the old root and sr the new one from the same hashes.
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if snode == 0 {
            return Err(wrong_length);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(wrong_length);
    }
    if fr != *old_root {
        return Err(ProofError::RootMismatch {
            size: old_size,
            computed: fr,
            claimed: *old_root,
        });
    }
    if sr != *new_root {
        return Err(ProofError::RootMismatch {
            size: new_size,
            computed: sr,
            claimed: *new_root,
        });
    }
    Ok(())
}

/// How many proof hashes the RFC 9162 verification loop consumes from `(fn, sn)` until `sn`
/// reaches 0: the proof length it accepts, so a wrong one can be reported as such.
fn path_length(mut fnode: u64, mut snode: u64) -> usize {
    let mut length = 0;
    while snode != 0 {
        if fnode == snode {
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        }
        fnode >>= 1;
        snode >>= 1;
        length += 1;
    }
    length
}

/// A hash as 64 lowercase hex digits (for messages and test data; bundles use base64).
pub fn to_hex(hash: &Hash) -> String {
    crate::model::hex(hash)
}

/// Why text is not a hash in hex.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    /// The text is not 64 characters long.
    #[error("a hash in hex is 64 digits, not {0} characters")]
    Length(usize),
    /// The text has a character that is not a hex digit.
    #[error("{0:?} is not a hex digit")]
    Digit(char),
}

/// The hash written as 64 hex digits (either case) in `text`.
pub fn from_hex(text: &str) -> Result<Hash, HexError> {
    let length = text.chars().count();
    if length != 64 {
        return Err(HexError::Length(length));
    }
    let mut digits = text.chars().map(|c| {
        c.to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
            .ok_or(HexError::Digit(c))
    });
    let mut hash = [0; 32];
    for byte in &mut hash {
        let (Some(high), Some(low)) = (digits.next(), digits.next()) else {
            return Err(HexError::Length(length));
        };
        *byte = (high? << 4) | low?;
    }
    Ok(hash)
}

/// An in-memory log, kept as the same perfect-subtree nodes the ledger stores: for tests,
/// and for the verifier, which rebuilds small trees from a bundle's leaves.
#[derive(Debug, Clone, Default)]
pub struct MemoryTree {
    /// `levels[level][index]` is node `(level, index)`.
    levels: Vec<Vec<Hash>>,
}

/// A node a [`MemoryTree`] does not have: asked for a tree larger than it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the in-memory tree has no node at level {level}, index {index}")]
pub struct MissingNode {
    /// The level asked for.
    pub level: u8,
    /// The index asked for.
    pub index: u64,
}

impl MemoryTree {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many leaves the log has.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |leaves| leaves.len() as u64)
    }

    /// Appends the entry `leaf` (hashed here) and returns its index.
    pub fn push(&mut self, leaf: &[u8]) -> u64 {
        self.push_hash(leaf_hash(leaf))
    }

    /// Appends the leaf whose hash is `leaf` and returns its index.
    pub fn push_hash(&mut self, leaf: Hash) -> u64 {
        let index = self.size();
        // Through `appended_nodes`, so this tree is built exactly as the ledger's is.
        let nodes = match appended_nodes(index, leaf, &*self) {
            Ok(nodes) => nodes,
            // An append reads only the left siblings of the new leaf's ancestors, all of
            // which are complete (so stored) in a tree of `index` leaves.
            Err(missing) => unreachable!("appending to a tree of {index} leaves: {missing}"),
        };
        for (level, _, hash) in nodes {
            let level = usize::from(level);
            if self.levels.len() <= level {
                self.levels.push(Vec::new());
            }
            self.levels[level].push(hash);
        }
        index
    }

    /// The tree head of the whole log.
    pub fn root(&self) -> Hash {
        match root(self.size(), self) {
            Ok(root) => root,
            // The root of the tree's own size reads only its complete, stored subtrees.
            Err(missing) => unreachable!("the root of a tree of {} leaves: {missing}", self.size()),
        }
    }
}

impl NodeSource for MemoryTree {
    type Error = MissingNode;

    fn node(&self, level: u8, index: u64) -> Result<Hash, MissingNode> {
        self.levels
            .get(usize::from(level))
            .and_then(|nodes| nodes.get(usize::try_from(index).ok()?))
            .copied()
            .ok_or(MissingNode { level, index })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    // Reference data of the certificate-transparency implementations, from
    // github.com/transparency-dev/merkle: the leaves, perfect-subtree hashes and roots in
    // testonly/constants.go, the inclusion and consistency proofs in proof/verify_test.go
    // (which numbers leaves from 1; from 0 here) and testonly/reference_test.go. The same
    // eight leaves and hashes are in google/certificate-transparency's merkle_tree_test.cc.
    const LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    /// `NODES[level][index]`.
    const NODES: [&[&str]; 4] = [
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
            "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
        ],
        &[
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        ],
        &[
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
        &["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
    ];
    /// `ROOTS[size]`.
    const ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];
    /// `(index, size, proof)`.
    const INCLUSION: [(u64, u64, &[&str]); 7] = [
        (0, 1, &[]),
        (
            0,
            2,
            &["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"],
        ),
        (
            1,
            2,
            &["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"],
        ),
        (
            2,
            3,
            &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        ),
        (
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];
    /// `(old, new, proof)`.
    const CONSISTENCY: [(u64, u64, &[&str]); 5] = [
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (
            6,
            7,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];

    fn hash(text: &str) -> Hash {
        from_hex(text).expect("test vectors are hashes in hex")
    }

    fn hashes(texts: &[&str]) -> Vec<Hash> {
        texts.iter().map(|text| hash(text)).collect()
    }

    fn bytes(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(&text[at..at + 2], 16).expect("leaf bytes in hex"))
            .collect()
    }

    fn reference_tree() -> MemoryTree {
        let mut tree = MemoryTree::new();
        for (index, leaf) in LEAVES.iter().enumerate() {
            assert_eq!(tree.push(&bytes(leaf)), index as u64);
        }
        tree
    }

    // The RFC 9162 §2.1 definitions, recursive over the leaf hashes, as written in the RFC.

    fn rfc_k(n: usize) -> usize {
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        k
    }

    fn rfc_mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = rfc_k(n);
                node_hash(&rfc_mth(&leaves[..k]), &rfc_mth(&leaves[k..]))
            }
        }
    }

    fn rfc_path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
        let n = leaves.len();
        if n <= 1 {
            return Vec::new();
        }
        let k = rfc_k(n);
        let (mut path, sibling) = if m < k {
            (rfc_path(m, &leaves[..k]), rfc_mth(&leaves[k..]))
        } else {
            (rfc_path(m - k, &leaves[k..]), rfc_mth(&leaves[..k]))
        };
        path.push(sibling);
        path
    }

    fn rfc_proof(m: usize, leaves: &[Hash]) -> Vec<Hash> {
        if m == 0 {
            return Vec::new();
        }
        rfc_subproof(m, leaves, true)
    }

    fn rfc_subproof(m: usize, leaves: &[Hash], b: bool) -> Vec<Hash> {
        let n = leaves.len();
        if m == n {
            return if b { Vec::new() } else { vec![rfc_mth(leaves)] };
        }
        let k = rfc_k(n);
        let (mut proof, sibling) = if m <= k {
            (rfc_subproof(m, &leaves[..k], b), rfc_mth(&leaves[k..]))
        } else {
            (
                rfc_subproof(m - k, &leaves[k..], false),
                rfc_mth(&leaves[..k]),
            )
        };
        proof.push(sibling);
        proof
    }

    const MAX: usize = 70;

    /// A tree of `MAX` distinct leaves, with its leaf hashes and every prefix's root.
    fn numbered_tree() -> (MemoryTree, Vec<Hash>, Vec<Hash>) {
        let mut tree = MemoryTree::new();
        let leaves: Vec<Hash> = (0..MAX as u64)
            .map(|i| leaf_hash(&i.to_be_bytes()))
            .collect();
        for leaf in &leaves {
            tree.push_hash(*leaf);
        }
        let roots = (0..=MAX).map(|size| rfc_mth(&leaves[..size])).collect();
        (tree, leaves, roots)
    }

    #[test]
    fn hashes_match_the_reference_vectors() {
        assert_eq!(to_hex(&empty_root()), ROOTS[0]);
        let tree = reference_tree();
        for (level, nodes) in NODES.iter().enumerate() {
            for (index, node) in nodes.iter().enumerate() {
                let stored = tree.node(level as u8, index as u64).expect("a stored node");
                assert_eq!(to_hex(&stored), *node, "node ({level}, {index})");
            }
            assert!(tree.node(level as u8, nodes.len() as u64).is_err());
        }
        for (index, leaf) in LEAVES.iter().enumerate() {
            assert_eq!(to_hex(&leaf_hash(&bytes(leaf))), NODES[0][index]);
        }
        assert_eq!(
            to_hex(&node_hash(&hash(NODES[0][0]), &hash(NODES[0][1]))),
            NODES[1][0]
        );
    }

    #[test]
    fn roots_match_the_reference_vectors() {
        let tree = reference_tree();
        for (size, expected) in ROOTS.iter().enumerate() {
            let got = root(size as u64, &tree).expect("a root within the tree");
            assert_eq!(to_hex(&got), *expected, "root of size {size}");
        }
        assert_eq!(to_hex(&tree.root()), ROOTS[8]);
        assert_eq!(MemoryTree::new().root(), empty_root());
    }

    #[test]
    fn inclusion_proofs_match_the_reference_vectors() {
        let tree = reference_tree();
        for (index, size, expected) in INCLUSION {
            let proof = inclusion_proof(index, size, &tree).expect("a proof within the tree");
            assert_eq!(proof, hashes(expected), "inclusion of {index} in {size}");
            let leaf = hash(NODES[0][index as usize]);
            let root = hash(ROOTS[size as usize]);
            verify_inclusion(&leaf, index, size, &proof, &root).expect("a reference proof");
        }
    }

    #[test]
    fn consistency_proofs_match_the_reference_vectors() {
        let tree = reference_tree();
        for (old, new, expected) in CONSISTENCY {
            let proof = consistency_proof(old, new, &tree).expect("a proof within the tree");
            assert_eq!(proof, hashes(expected), "consistency of {old} with {new}");
            let (old_root, new_root) = (hash(ROOTS[old as usize]), hash(ROOTS[new as usize]));
            verify_consistency(old, new, &old_root, &new_root, &proof).expect("a reference proof");
        }
    }

    #[test]
    fn roots_and_proofs_equal_the_rfc_definitions_for_every_size_to_70() {
        let (tree, leaves, roots) = numbered_tree();
        for size in 0..=MAX {
            assert_eq!(root(size as u64, &tree), Ok(roots[size]), "root of {size}");
            for index in 0..size {
                let proof = inclusion_proof(index as u64, size as u64, &tree).expect("in range");
                assert_eq!(proof, rfc_path(index, &leaves[..size]), "{index} in {size}");
                verify_inclusion(
                    &leaves[index],
                    index as u64,
                    size as u64,
                    &proof,
                    &roots[size],
                )
                .expect("a valid inclusion proof");
            }
            for old in 0..=size {
                let proof = consistency_proof(old as u64, size as u64, &tree).expect("in range");
                assert_eq!(proof, rfc_proof(old, &leaves[..size]), "{old} to {size}");
                verify_consistency(old as u64, size as u64, &roots[old], &roots[size], &proof)
                    .expect("a valid consistency proof");
            }
        }
    }

    /// Every way of spoiling `proof`: one bit flipped in each hash (which bit varies, or all
    /// 256 when `every_bit`), each hash dropped, a hash added at either end.
    fn spoiled(proof: &[Hash], every_bit: bool, extra: &Hash) -> Vec<Vec<Hash>> {
        let mut out = Vec::new();
        for at in 0..proof.len() {
            let bits: Vec<usize> = if every_bit {
                (0..256).collect()
            } else {
                vec![(at * 37 + proof.len() * 11) % 256]
            };
            for bit in bits {
                let mut flipped = proof.to_vec();
                flipped[at][bit / 8] ^= 1 << (bit % 8);
                out.push(flipped);
            }
            let mut dropped = proof.to_vec();
            dropped.remove(at);
            out.push(dropped);
        }
        let mut appended = proof.to_vec();
        appended.push(*extra);
        out.push(appended);
        let mut prepended = vec![*extra];
        prepended.extend_from_slice(proof);
        out.push(prepended);
        out
    }

    #[test]
    fn spoiled_inclusion_proofs_fail() {
        let (tree, leaves, roots) = numbered_tree();
        for size in 1..=MAX {
            for index in 0..size {
                let proof = inclusion_proof(index as u64, size as u64, &tree).expect("in range");
                let (leaf, root) = (&leaves[index], &roots[size]);
                for bad in spoiled(&proof, size <= 12, root) {
                    assert!(
                        verify_inclusion(leaf, index as u64, size as u64, &bad, root).is_err(),
                        "a spoiled proof of {index} in {size} passed"
                    );
                }
                // The proof, with the right tree head, for other leaves and sizes: all pairs
                // in small trees, neighbours and doublings in larger ones.
                let others: Vec<(usize, usize)> = if size <= 24 {
                    (1..=24).flat_map(|s| (0..s).map(move |i| (i, s))).collect()
                } else {
                    let indices = [
                        index.wrapping_sub(1),
                        index + 1,
                        index ^ 1,
                        index ^ 2,
                        index,
                    ];
                    let sizes = [size - 1, size + 1, size * 2, size / 2, size];
                    indices
                        .iter()
                        .flat_map(|i| sizes.iter().map(move |s| (*i, *s)))
                        .filter(|(i, s)| i < s && *s <= MAX)
                        .collect()
                };
                for (i, s) in others {
                    if (i, s) == (index, size) || rfc_path(i, &leaves[..s]) == proof {
                        continue;
                    }
                    assert!(
                        verify_inclusion(leaf, i as u64, s as u64, &proof, &roots[s]).is_err(),
                        "the proof of {index} in {size} passed as {i} in {s}"
                    );
                }
                let mut wrong_root = *root;
                wrong_root[index % 32] ^= 4;
                assert!(
                    verify_inclusion(leaf, index as u64, size as u64, &proof, &wrong_root).is_err()
                );
                let other_leaf = leaves[(index + 1) % MAX];
                assert!(
                    verify_inclusion(&other_leaf, index as u64, size as u64, &proof, root).is_err()
                );
            }
        }
    }

    #[test]
    fn spoiled_consistency_proofs_fail() {
        let (tree, leaves, roots) = numbered_tree();
        for new in 1..=MAX {
            for old in 1..new {
                let proof = consistency_proof(old as u64, new as u64, &tree).expect("in range");
                let (old_root, new_root) = (&roots[old], &roots[new]);
                let check = |o: usize, n: usize, old_root: &Hash, new_root: &Hash, p: &[Hash]| {
                    verify_consistency(o as u64, n as u64, old_root, new_root, p)
                };
                for bad in spoiled(&proof, new <= 12, new_root) {
                    assert!(
                        check(old, new, old_root, new_root, &bad).is_err(),
                        "a spoiled proof of {old} to {new} passed"
                    );
                }
                assert!(check(old, new, new_root, old_root, &proof).is_err());
                let (mut wrong_old, mut wrong_new) = (*old_root, *new_root);
                wrong_old[0] ^= 1;
                wrong_new[31] ^= 0x80;
                assert!(check(old, new, &wrong_old, new_root, &proof).is_err());
                assert!(check(old, new, old_root, &wrong_new, &proof).is_err());
                assert!(check(old, new, old_root, old_root, &proof).is_err());
                // The proof, with the right tree heads, for other sizes: all pairs in small
                // trees, neighbours and doublings in larger ones.
                let others: Vec<(usize, usize)> = if new <= 24 {
                    (1..=24)
                        .flat_map(|n| (0..=n).map(move |o| (o, n)))
                        .collect()
                } else {
                    let olds = [old - 1, old + 1, old * 2, old / 2];
                    let news = [new - 1, new + 1, new * 2, new / 2, new];
                    olds.iter()
                        .flat_map(|o| news.iter().map(move |n| (*o, *n)))
                        .chain([(old, new - 1), (old, new + 1), (old, new * 2)])
                        .filter(|(o, n)| o <= n && *n <= MAX)
                        .collect()
                };
                for (o, n) in others {
                    if (o, n) == (old, new) || rfc_proof(o, &leaves[..n]) == proof {
                        continue;
                    }
                    assert!(
                        check(o, n, &roots[o], &roots[n], &proof).is_err(),
                        "the proof of {old} to {new} passed as {o} to {n}"
                    );
                }
            }
        }
    }

    #[test]
    fn out_of_range_requests_are_errors() {
        let tree = reference_tree();
        let leaf = hash(NODES[0][0]);
        let root = hash(ROOTS[8]);
        assert_eq!(
            verify_inclusion(&leaf, 8, 8, &[], &root),
            Err(ProofError::IndexOutOfRange { index: 8, size: 8 })
        );
        assert!(verify_inclusion(&leaf, 0, 0, &[], &empty_root()).is_err());
        assert_eq!(
            verify_consistency(5, 4, &root, &root, &[]),
            Err(ProofError::SizesOutOfOrder { old: 5, new: 4 })
        );
        assert!(matches!(
            inclusion_proof(8, 8, &tree),
            Err(ProveError::IndexOutOfRange { index: 8, size: 8 })
        ));
        assert!(matches!(
            consistency_proof(5, 4, &tree),
            Err(ProveError::SizesOutOfOrder { old: 5, new: 4 })
        ));
        // A tree larger than the source holds: the source's error, not a wrong answer.
        assert!(matches!(
            inclusion_proof(3, 9, &tree),
            Err(ProveError::Source(MissingNode { level: 0, index: 8 }))
        ));
        assert_eq!(
            super::root(9, &tree),
            Err(MissingNode { level: 0, index: 8 })
        );
        assert!(matches!(
            consistency_proof(3, 12, &tree),
            Err(ProveError::Source(_))
        ));
    }

    #[test]
    fn equal_and_empty_old_trees_need_an_empty_proof_and_matching_roots() {
        let root5 = hash(ROOTS[5]);
        let root6 = hash(ROOTS[6]);
        assert_eq!(verify_consistency(5, 5, &root5, &root5, &[]), Ok(()));
        assert_eq!(
            verify_consistency(5, 5, &root5, &root6, &[]),
            Err(ProofError::ConflictingRoots {
                size: 5,
                old: root5,
                new: root6
            })
        );
        assert_eq!(
            verify_consistency(5, 5, &root5, &root5, &[root5]),
            Err(ProofError::WrongProofLength {
                expected: 0,
                found: 1
            })
        );
        assert_eq!(verify_consistency(0, 6, &empty_root(), &root6, &[]), Ok(()));
        assert_eq!(
            verify_consistency(0, 0, &empty_root(), &empty_root(), &[]),
            Ok(())
        );
        assert_eq!(
            verify_consistency(0, 6, &root5, &root6, &[]),
            Err(ProofError::RootMismatch {
                size: 0,
                computed: empty_root(),
                claimed: root5
            })
        );
        assert!(verify_consistency(0, 6, &empty_root(), &root6, &[root6]).is_err());
        // RFC 9162 §2.1.4.2 step 1: between different sizes, an empty proof fails.
        assert_eq!(
            verify_consistency(1, 2, &hash(ROOTS[1]), &hash(ROOTS[2]), &[]),
            Err(ProofError::WrongProofLength {
                expected: 1,
                found: 0
            })
        );
    }

    #[test]
    fn errors_say_what_was_expected() {
        let tree = reference_tree();
        let proof = consistency_proof(6, 8, &tree).expect("in range");
        let wrong_new = hash(ROOTS[7]);
        let error = verify_consistency(6, 8, &hash(ROOTS[6]), &wrong_new, &proof)
            .expect_err("the wrong new root");
        assert_eq!(
            error.to_string(),
            format!(
                "the proof gives root {} for tree size 8 but the checkpoint says {}",
                ROOTS[8], ROOTS[7]
            )
        );
        let error = verify_inclusion(&hash(NODES[0][5]), 5, 8, &proof[..2], &hash(ROOTS[8]))
            .expect_err("a short proof");
        assert_eq!(
            error.to_string(),
            "wrong proof length: the proof has 2 hashes where 3 are needed"
        );
    }

    #[test]
    fn hex_round_trips_and_rejects_what_is_not_a_hash() {
        let root = hash(ROOTS[8]);
        assert_eq!(from_hex(&to_hex(&root)), Ok(root));
        assert_eq!(from_hex(&ROOTS[8].to_uppercase()), Ok(root));
        assert_eq!(from_hex("abc"), Err(HexError::Length(3)));
        assert_eq!(from_hex(&"g".repeat(64)), Err(HexError::Digit('g')));
        assert_eq!(from_hex(&"é".repeat(64)), Err(HexError::Digit('é')));
    }

    /// A node source that counts its reads.
    struct Counting<S> {
        inner: S,
        reads: Cell<usize>,
    }

    impl<S: NodeSource> NodeSource for Counting<S> {
        type Error = S::Error;

        fn node(&self, level: u8, index: u64) -> Result<Hash, S::Error> {
            self.reads.set(self.reads.get() + 1);
            self.inner.node(level, index)
        }
    }

    impl<S> Counting<S> {
        fn new(inner: S) -> Self {
            Counting {
                inner,
                reads: Cell::new(0),
            }
        }

        /// The reads since the last call.
        fn take(&self) -> usize {
            self.reads.replace(0)
        }
    }

    /// 2·⌈log2 n⌉ + 2: the most reads any one operation on a tree of `n` leaves may make.
    fn read_bound(n: u64) -> usize {
        2 * (64 - n.saturating_sub(1).leading_zeros()) as usize + 2
    }

    #[test]
    fn appends_roots_and_proofs_read_logarithmically_many_nodes() {
        let mut tree = Counting::new(MemoryTree::new());
        let mut most = 0;
        for size in 0..2100u64 {
            let leaf = leaf_hash(&size.to_be_bytes());
            let nodes = appended_nodes(size, leaf, &tree).expect("an append");
            let reads = tree.take();
            assert_eq!(reads, size.trailing_ones() as usize);
            assert!(
                reads <= read_bound(size + 1),
                "{reads} reads appending to {size}"
            );
            assert_eq!(nodes.len(), reads + 1);
            most = most.max(reads);
            tree.inner.push_hash(leaf);
            // The nodes appended are the ones a MemoryTree stores.
            for (level, index, hash) in nodes {
                assert_eq!(tree.inner.node(level, index), Ok(hash));
            }
            tree.take();
        }
        assert_eq!(most, 11, "appending leaf 2047");
        for size in [
            1, 2, 3, 5, 8, 63, 64, 65, 1000, 1023, 1024, 1025, 2047, 2099,
        ] {
            let bound = read_bound(size);
            root(size, &tree).expect("in range");
            assert!(tree.take() <= bound);
            for index in [0, size / 3, size / 2, size - 1] {
                inclusion_proof(index, size, &tree).expect("in range");
                let reads = tree.take();
                assert!(reads <= bound, "{reads} reads proving {index} in {size}");
            }
            for old in [1, size / 3, size / 2, size - 1] {
                consistency_proof(old, size, &tree).expect("in range");
                let reads = tree.take();
                assert!(reads <= bound, "{reads} reads proving {old} to {size}");
            }
        }
    }

    /// A log of any size whose leaves are all the same entry, so node `(level, _)` is the same
    /// hash for every index: stands in for a ledger of 10^8 leaves and more.
    struct Uniform {
        levels: Vec<Hash>,
    }

    impl Uniform {
        fn new() -> Self {
            let mut levels = vec![leaf_hash(b"same")];
            for level in 0..64 {
                let below = levels[level];
                levels.push(node_hash(&below, &below));
            }
            Uniform { levels }
        }
    }

    impl NodeSource for Uniform {
        type Error = std::convert::Infallible;

        fn node(&self, level: u8, _index: u64) -> Result<Hash, Self::Error> {
            Ok(self.levels[usize::from(level)])
        }
    }

    #[test]
    fn huge_logs_prove_and_verify_with_few_reads() {
        let log = Counting::new(Uniform::new());
        let leaf = log.inner.levels[0];
        for size in [
            100_000_000u64,
            123_456_789,
            (1 << 40) + 12_345,
            u64::MAX / 3,
        ] {
            let bound = read_bound(size);
            let new_root = root(size, &log).expect("infallible");
            assert!(log.take() <= bound);
            let index = size / 3 + 7;
            let proof = inclusion_proof(index, size, &log).expect("in range");
            assert!(log.take() <= bound);
            assert_eq!(
                verify_inclusion(&leaf, index, size, &proof, &new_root),
                Ok(())
            );
            let old = size / 2 + 1;
            let old_root = root(old, &log).expect("infallible");
            let proof = consistency_proof(old, size, &log).expect("in range");
            assert!(log.take() <= 2 * bound);
            assert_eq!(
                verify_consistency(old, size, &old_root, &new_root, &proof),
                Ok(())
            );
            let nodes = appended_nodes(size, leaf, &log).expect("infallible");
            assert!(log.take() <= bound);
            for (level, _, hash) in nodes {
                assert_eq!(hash, log.inner.levels[usize::from(level)]);
            }
        }
    }
}
