//! Stable identifiers derived from content: the same input always gives the same ID, on every
//! machine and version, so a re-read SMS maps to the row (and respond.io `mId`) it had before.
//!
//! The hash is FNV-1a with 128 bits (the parameters of the FNV reference, IETF
//! draft-eastlake-fnv §5): not cryptographic — nobody gains by forging an SMS identity — but
//! stable, dependency-free, and wide enough that distinct SMS never collide in practice.

const FNV128_OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
const FNV128_PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;

/// `prefix` followed by 32 hex digits hashing `fields`. Fields are length-prefixed, so
/// `["ab", "c"]` and `["a", "bc"]` differ. With a prefix of up to 18 characters the result fits
/// respond.io's 50-character `mId` limit.
pub fn stable_id(prefix: &str, fields: &[&[u8]]) -> String {
    let mut hash = FNV128_OFFSET;
    let mut feed = |bytes: &[u8]| {
        for &byte in bytes {
            hash ^= u128::from(byte);
            hash = hash.wrapping_mul(FNV128_PRIME);
        }
    };
    for field in fields {
        feed(&(field.len() as u64).to_be_bytes());
        feed(field);
    }
    format!("{prefix}{hash:032x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_and_field_separated() {
        let a = stable_id("in-", &[b"ab", b"c"]);
        assert_eq!(a, stable_id("in-", &[b"ab", b"c"]));
        assert_ne!(a, stable_id("in-", &[b"a", b"bc"]));
        assert_eq!(a.len(), 3 + 32);
        // Pinned: the IDs already given to respond.io must never change between versions.
        assert_eq!(
            stable_id("", &[]),
            format!("{FNV128_OFFSET:032x}"),
            "no fields hash to the offset basis"
        );
    }
}
