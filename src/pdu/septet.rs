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

/// Appends septets `first..end` of `data` to `out`, one per octet. Bits past the end of
/// `data` read as zero (callers check lengths first).
pub(crate) fn unpack_into(data: &[u8], first: usize, end: usize, out: &mut Vec<u8>) {
    if first >= end {
        return;
    }
    out.reserve(end - first);
    let start_bit = first * 7;
    let mut next = start_bit / 8;
    // A bit accumulator: low `bits` bits of `acc` are the next unread bits, LSB first.
    let mut acc = u32::from(data.get(next).copied().unwrap_or(0)) >> (start_bit % 8);
    let mut bits = 8 - start_bit % 8;
    next += 1;
    for _ in first..end {
        if bits < 7 {
            acc |= u32::from(data.get(next).copied().unwrap_or(0)) << bits;
            bits += 8;
            next += 1;
        }
        out.push((acc & 0x7F) as u8);
        acc >>= 7;
        bits -= 7;
    }
}

/// Appends a TP-UD to `out`: `header` (the UDH octets including UDHL, or empty), fill bits,
/// then `septets` packed. Returns TP-UDL in septets.
pub(crate) fn pack(header: &[u8], septets: &[u8], out: &mut Vec<u8>) -> usize {
    let first = header_septets(header.len());
    let total = first + septets.len();
    out.reserve(octets_for(total));
    out.extend_from_slice(header);
    // Fill bits (zero) up to the next septet boundary, then the septets, LSB first.
    let mut acc: u32 = 0;
    let mut bits = first * 7 - header.len() * 8;
    for &septet in septets {
        acc |= u32::from(septet & 0x7F) << bits;
        bits += 7;
        if bits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            bits -= 8;
        }
    }
    if bits > 0 {
        out.push(acc as u8);
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
        let mut back = Vec::new();
        unpack_into(&out, 0, 10, &mut back);
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
        let mut back = Vec::new();
        unpack_into(&out, 7, 8, &mut back);
        assert_eq!(back, [0x41]);
    }

    #[test]
    fn every_offset_round_trips() {
        let septets: Vec<u8> = (0..=127).collect();
        for header_len in 0..8 {
            let header: Vec<u8> = (0..header_len).map(|i| 0xA0 | i as u8).collect();
            let mut out = Vec::new();
            let udl = pack(&header, &septets, &mut out);
            assert_eq!(out.len(), octets_for(udl));
            assert_eq!(&out[..header.len()], &header[..]);
            let first = header_septets(header.len());
            for start in [first, first + 1, first + 7] {
                let mut back = Vec::new();
                unpack_into(&out, start, udl, &mut back);
                assert_eq!(
                    back,
                    septets[start - first..],
                    "header {header_len}, from {start}"
                );
            }
        }
    }

    #[test]
    fn reading_past_the_end_gives_zero_bits_not_a_panic() {
        let mut back = Vec::new();
        unpack_into(&[0xFF], 0, 3, &mut back);
        assert_eq!(back, [0x7F, 0x01, 0]);
    }
}
