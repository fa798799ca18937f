//! The Internet checksum (RFC 1071) and the upper-layer checksum of IPv6
//! (RFC 8200 §8.1) as ICMPv6 uses it (RFC 4443 §2.3).
//!
//! The ICMPv6 checksum is the 16-bit one's complement of the one's complement
//! sum of the IPv6 pseudo-header (source address, destination address,
//! upper-layer packet length as 32 bits, three zero bytes, next header 58)
//! followed by the whole ICMPv6 message with its checksum field taken as zero.
//! A message verifies when the same sum over the message *including* its
//! checksum folds to `0xffff`.

use std::net::Ipv6Addr;

use crate::ipv6::PROTO_ICMPV6;

/// Adds `data` to a running one's complement sum, big-endian 16-bit
/// words, an odd trailing byte padded with zero (RFC 1071 §4.1).
///
/// Four bytes at a time (the sum does not depend on byte order, RFC 1071
/// §2(B)), kept in 64 bits, so any realistic input length is safe; fold
/// it with [`fold`].
pub fn add(sum: u64, data: &[u8]) -> u64 {
    let mut words = data.chunks_exact(4);
    let mut s: u64 = 0;
    for w in &mut words {
        s += u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]));
    }
    // Back to big-endian 16-bit words: fold to 16 bits, swap if needed.
    let mut s = u64::from(fold(s));
    if cfg!(target_endian = "little") {
        s = u64::from((s as u16).swap_bytes());
    }
    for w in words.remainder().chunks(2) {
        s += u64::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]));
    }
    sum + s
}

/// Folds a running sum into 16 bits (end-around carry), *without* taking
/// the complement.
pub fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // The loop leaves at most 0xffff.
    sum as u16
}

/// The sum of the IPv6 pseudo-header of RFC 8200 §8.1.
pub fn pseudo_header(src: &Ipv6Addr, dst: &Ipv6Addr, upper_len: u32, next_header: u8) -> u64 {
    let mut sum = add(0, &src.octets());
    sum = add(sum, &dst.octets());
    sum = add(sum, &upper_len.to_be_bytes());
    add(sum, &[0, 0, 0, next_header])
}

/// The checksum to put in an ICMPv6 message whose checksum field (bytes 2
/// and 3) is currently zero.
///
/// Messages longer than `u32::MAX` bytes cannot exist in IPv6 (and cannot
/// be built in this crate); their length is saturated.
pub fn icmpv6(src: &Ipv6Addr, dst: &Ipv6Addr, message: &[u8]) -> u16 {
    let len = u32::try_from(message.len()).unwrap_or(u32::MAX);
    !fold(add(pseudo_header(src, dst, len, PROTO_ICMPV6), message))
}

/// Whether an ICMPv6 message (checksum field included) verifies.
pub fn verify_icmpv6(src: &Ipv6Addr, dst: &Ipv6Addr, message: &[u8]) -> bool {
    let len = u32::try_from(message.len()).unwrap_or(u32::MAX);
    fold(add(pseudo_header(src, dst, len, PROTO_ICMPV6), message)) == 0xffff
}

/// Computes and stores the checksum of an ICMPv6 message in place. Messages
/// shorter than the 4-byte ICMPv6 header are left untouched.
pub fn fill_icmpv6(src: &Ipv6Addr, dst: &Ipv6Addr, message: &mut [u8]) {
    if message.len() < 4 {
        return;
    }
    message[2] = 0;
    message[3] = 0;
    let c = icmpv6(src, dst, message);
    message[2..4].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_sum_matches_word_by_word() {
        for len in 0..40 {
            let d: Vec<u8> = (0..len)
                .map(|i| (i as u8).wrapping_mul(31) ^ 0xa5)
                .collect();
            let mut slow = 0u64;
            for w in d.chunks(2) {
                slow += u64::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]));
            }
            assert_eq!(fold(add(5, &d)), fold(slow + 5), "{len}");
        }
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (folded).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(add(0, &data)), 0xddf2);
        assert_eq!(!fold(add(0, &data)), 0x220d);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(fold(add(0, &[0x12, 0x34, 0x56])), 0x1234 + 0x5600);
        assert_eq!(add(0, &[]), 0);
    }

    #[test]
    fn fold_carries_repeatedly() {
        assert_eq!(fold(0xffff), 0xffff);
        assert_eq!(fold(0x1_0000), 1);
        assert_eq!(fold(0x1_ffff), 1);
        assert_eq!(fold(0xffff_ffff_ffff), 0xffff);
    }

    #[test]
    fn fill_then_verify_and_detect_corruption() {
        let src: Ipv6Addr = "fe80::1".parse().unwrap();
        let dst: Ipv6Addr = "ff02::1".parse().unwrap();
        let mut msg = [134u8, 0, 0xa5, 0xa5, 64, 0, 7, 8, 0, 0, 0, 0, 0, 0, 0, 1];
        fill_icmpv6(&src, &dst, &mut msg);
        assert!(verify_icmpv6(&src, &dst, &msg));
        msg[15] ^= 1;
        assert!(!verify_icmpv6(&src, &dst, &msg));
        msg[15] ^= 1;
        // A different pseudo-header (addresses) fails too.
        assert!(!verify_icmpv6(&src, &"ff02::2".parse().unwrap(), &msg));
        let mut short = [1u8, 2, 3];
        fill_icmpv6(&src, &dst, &mut short);
        assert_eq!(short, [1, 2, 3]);
    }
}
