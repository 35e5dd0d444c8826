//! Septet packing of 3GPP TS 23.038 §6.1.2.1.1: septets laid end to end, least significant
//! bit first, across octets.
//!
//! With a user data header (TS 23.040 §9.2.3.24) the first character starts on the next
//! septet boundary after the header; the bits in between are fill bits. Both directions here
//! treat the whole TP-UD as one bit string and address septet `i` at bit `7 * i`, which gives
//! the fill bits for free. Which septet means which character is [`super::gsm7`]'s job.

/// The number of whole septets a header of `header_octets` occupies, fill bits included: the
/// index of the first text septet.
pub(crate) fn header_septets(header_octets: usize) -> usize {
    (header_octets * 8).div_ceil(7)
}

/// The number of octets that `septets` septets occupy.
pub(crate) fn octets_for(septets: usize) -> usize {
    (septets * 7).div_ceil(8)
}

/// Septet `index` of `data`; bits past the end read as zero (callers check lengths first).
fn septet_at(data: &[u8], index: usize) -> u8 {
    let bit = index * 7;
    let byte = bit / 8;
    let shift = bit % 8;
    let low = data.get(byte).map_or(0, |b| b >> shift);
    let high = if shift > 1 {
        data.get(byte + 1).map_or(0, |b| b << (8 - shift))
    } else {
        0
    };
    (low | high) & 0x7F
}

/// Septets `first..end` of `data`.
pub(crate) fn unpack(data: &[u8], first: usize, end: usize) -> impl Iterator<Item = u8> + '_ {
    (first..end).map(move |index| septet_at(data, index))
}

/// Appends a TP-UD to `out`: `header` (the UDH octets including UDHL, or empty), fill bits,
/// then `septets` packed. Returns TP-UDL in septets.
pub(crate) fn pack(header: &[u8], septets: &[u8], out: &mut Vec<u8>) -> usize {
    let first = header_septets(header.len());
    let total = first + septets.len();
    let base = out.len();
    out.resize(base + octets_for(total), 0);
    let data = &mut out[base..];
    data[..header.len()].copy_from_slice(header);
    for (offset, &septet) in septets.iter().enumerate() {
        let bit = (first + offset) * 7;
        let byte = bit / 8;
        let shift = bit % 8;
        let septet = septet & 0x7F;
        data[byte] |= septet << shift;
        if shift > 1 {
            data[byte + 1] |= septet >> (8 - shift);
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_the_ts_23_038_example() {
        // "hellohello" → E8329BFD4697D9EC37 (the classic worked example).
        let septets: Vec<u8> = "hellohello".bytes().collect();
        let mut out = Vec::new();
        assert_eq!(pack(&[], &septets, &mut out), 10);
        assert_eq!(out, [0xE8, 0x32, 0x9B, 0xFD, 0x46, 0x97, 0xD9, 0xEC, 0x37]);
        let back: Vec<u8> = unpack(&out, 0, 10).collect();
        assert_eq!(back, septets);
    }

    #[test]
    fn header_of_six_octets_takes_seven_septets_with_one_fill_bit() {
        // 6 octets = 48 bits → 7 septets (49 bits): one fill bit, text starts at bit 49.
        assert_eq!(header_septets(6), 7);
        assert_eq!(header_septets(7), 8);
        assert_eq!(header_septets(0), 0);
        let header = [0x05, 0x00, 0x03, 0x2A, 0x02, 0x01];
        let mut out = Vec::new();
        let udl = pack(&header, b"A", &mut out);
        assert_eq!(udl, 8);
        assert_eq!(&out[..6], &header);
        // 'A' = 0x41 at bit 49: octet 6 holds bits 48..56, so 0x41 << 1 = 0x82.
        assert_eq!(out[6], 0x82);
        assert_eq!(unpack(&out, 7, 8).collect::<Vec<_>>(), [0x41]);
    }

    #[test]
    fn reading_past_the_end_gives_zero_bits_not_a_panic() {
        assert_eq!(unpack(&[0xFF], 0, 3).collect::<Vec<_>>(), [0x7F, 0x01, 0]);
    }
}
