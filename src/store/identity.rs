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
    let hash = fields.iter().fold(FNV128_OFFSET, |hash, field| {
        let hash = fnv1a_128(hash, &(field.len() as u64).to_be_bytes());
        fnv1a_128(hash, field)
    });
    format!("{prefix}{hash:032x}")
}

/// Continues an FNV-1a hash over `bytes`.
fn fnv1a_128(hash: u128, bytes: &[u8]) -> u128 {
    bytes.iter().fold(hash, |hash, &byte| {
        (hash ^ u128::from(byte)).wrapping_mul(FNV128_PRIME)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_128_matches_the_reference_vector() {
        assert_eq!(
            fnv1a_128(FNV128_OFFSET, b"a"),
            0xd228_cb69_6f1a_8caf_7891_2b70_4e4a_8964
        );
    }

    #[test]
    fn stable_and_field_separated() {
        let a = stable_id("in-", &[b"ab", b"c"]);
        assert_eq!(a, stable_id("in-", &[b"ab", b"c"]));
        assert_ne!(a, stable_id("in-", &[b"a", b"bc"]));
        assert_eq!(a.len(), 3 + 32);
        assert_eq!(stable_id("", &[]), format!("{FNV128_OFFSET:032x}"));
        // Pinned: IDs already given to respond.io must never change between versions.
        assert_eq!(
            stable_id("sms-", &[b"single", b"\x04\x0b"]),
            "sms-5beb86e0fb219134552a6f7d6cb02ec4"
        );
    }
}
