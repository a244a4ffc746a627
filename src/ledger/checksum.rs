//! CRC-32 checksums of stored values: result blocks, journal entries and digest days carry
//! one, checked on every read, so damage that sled's own log checksum cannot see (a value
//! rewritten in place, a bad sector in a blob file, a bug) is found instead of misread.
//!
//! CRC-32 (IEEE, `crc32fast`) and not a cryptographic hash: the threat is accident, not an
//! adversary (the evidence log signs what must resist tampering), and four bytes per value
//! keep the per-result cost of a block under a tenth of a byte. Each checksum covers the
//! value's *key* too, so a value that lands under the wrong key does not pass.

/// Bytes of a checksum.
pub(super) const CHECKSUM_BYTES: usize = 4;

/// The checksum of `key` followed by `value`.
pub(super) fn checksum(key: &[u8], value: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(key);
    hasher.update(value);
    hasher.finalize()
}

/// Appends the checksum of `key ++ value` (big-endian) to `value`.
pub(super) fn append_checksum(key: &[u8], value: &mut Vec<u8>) {
    let sum = checksum(key, value);
    value.extend_from_slice(&sum.to_be_bytes());
}

/// `value` without its trailing checksum, once that checksum matches `key ++ the rest`.
pub(super) fn strip_checksum<'a>(key: &[u8], value: &'a [u8]) -> Result<&'a [u8], String> {
    let split = value
        .len()
        .checked_sub(CHECKSUM_BYTES)
        .ok_or("too short to hold its checksum")?;
    let (body, stored) = value.split_at(split);
    let mut sum = [0u8; CHECKSUM_BYTES];
    sum.copy_from_slice(stored);
    let stored = u32::from_be_bytes(sum);
    let computed = checksum(key, body);
    if stored != computed {
        return Err(format!(
            "checksum mismatch (stored {stored:08x}, computed {computed:08x})"
        ));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_single_bit_flip_and_a_wrong_key_are_caught() {
        let key = b"key-1";
        let mut value = b"some block bytes".to_vec();
        append_checksum(key, &mut value);
        assert_eq!(strip_checksum(key, &value).unwrap(), b"some block bytes");
        for i in 0..value.len() * 8 {
            let mut flipped = value.clone();
            flipped[i / 8] ^= 1 << (i % 8);
            assert!(strip_checksum(key, &flipped).is_err(), "bit {i}");
        }
        assert!(strip_checksum(b"key-2", &value).is_err());
        assert!(strip_checksum(key, &value[..3]).is_err());
    }
}
