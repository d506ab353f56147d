//! The compression framing of the Redis transport (spec §1.5): while
//! compression is on, every task and every non-empty reply is framed as
//! `0x00` + UTF-8 JSON (below the threshold) or `0x01` + the 4-byte
//! big-endian length of the JSON + a zlib (RFC 1950) stream of it.
//!
//! Public through `coderunner::testing` (feature `emulator`), for tests
//! that speak the transport themselves; crate-private without it.
#![cfg_attr(not(feature = "emulator"), allow(unreachable_pub))]

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;

/// The zlib level the official runner compresses with.
const LEVEL: u32 = 7;
/// The largest unframed task accepted (a decompression bomb is refused).
pub(crate) const MAX_UNFRAMED_BYTES: usize = 64 << 20;

/// Why a framed message cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FramingError {
    /// The message is empty.
    #[error("an empty message has no frame")]
    Empty,
    /// The first byte is neither 0 nor 1.
    #[error("unknown frame type {0:#04x} (expected 0x00 plain or 0x01 zlib)")]
    UnknownType(u8),
    /// A compressed frame is shorter than its header.
    #[error("a compressed frame needs a 4-byte length after its type byte")]
    Truncated,
    /// The declared length is larger than the limit.
    #[error("a compressed frame declares {0} bytes, more than the limit of {MAX_UNFRAMED_BYTES}")]
    TooLarge(usize),
    /// The zlib stream is broken or does not have the declared length.
    #[error("the zlib stream is invalid: {0}")]
    Zlib(String),
}

/// Frames `json` as the official runner does, compressing it when it has at
/// least `threshold` bytes.
pub fn frame(json: &[u8], threshold: usize) -> Vec<u8> {
    if json.len() < threshold {
        let mut out = Vec::with_capacity(json.len() + 1);
        out.push(0);
        out.extend_from_slice(json);
        return out;
    }
    let mut out = Vec::with_capacity(json.len() / 4 + 16);
    out.push(1);
    // A length over 4 GiB cannot be framed; the official runner has the same limit.
    out.extend_from_slice(&u32::try_from(json.len()).unwrap_or(u32::MAX).to_be_bytes());
    let mut encoder = ZlibEncoder::new(out, Compression::new(LEVEL));
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(json);
    encoder.finish().unwrap_or_default()
}

/// Reads a framed message back into its JSON bytes.
pub fn unframe(message: &[u8]) -> Result<Vec<u8>, FramingError> {
    match message.split_first() {
        None => Err(FramingError::Empty),
        Some((0, json)) => Ok(json.to_vec()),
        Some((1, rest)) => {
            let (len, stream) = rest
                .split_first_chunk::<4>()
                .ok_or(FramingError::Truncated)?;
            let len = u32::from_be_bytes(*len) as usize;
            if len > MAX_UNFRAMED_BYTES {
                return Err(FramingError::TooLarge(len));
            }
            let mut json = Vec::with_capacity(len);
            ZlibDecoder::new(stream)
                .take(len as u64 + 1)
                .read_to_end(&mut json)
                .map_err(|e| FramingError::Zlib(e.to_string()))?;
            if json.len() != len {
                return Err(FramingError::Zlib(format!(
                    "it holds {} bytes where the frame declares {len}",
                    json.len()
                )));
            }
            Ok(json)
        }
        Some((other, _)) => Err(FramingError::UnknownType(*other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_messages_are_framed_plain() {
        let framed = frame(br#"{"a":1}"#, 8192);
        assert_eq!(framed[0], 0);
        assert_eq!(&framed[1..], br#"{"a":1}"#);
        assert_eq!(unframe(&framed).unwrap(), br#"{"a":1}"#);
    }

    #[test]
    fn long_messages_are_compressed_with_their_length() {
        let json = format!("[{}]", vec!["\"abc\""; 5000].join(","));
        let framed = frame(json.as_bytes(), 8192);
        assert_eq!(framed[0], 1);
        assert_eq!(
            u32::from_be_bytes(framed[1..5].try_into().unwrap()) as usize,
            json.len()
        );
        // A zlib stream starts with 0x78.
        assert_eq!(framed[5], 0x78);
        assert!(framed.len() < json.len() / 4);
        assert_eq!(unframe(&framed).unwrap(), json.as_bytes());
    }

    #[test]
    fn broken_frames_are_refused_with_a_reason() {
        assert_eq!(unframe(b""), Err(FramingError::Empty));
        assert_eq!(unframe(b"{}"), Err(FramingError::UnknownType(b'{')));
        assert_eq!(unframe(&[1, 0, 0]), Err(FramingError::Truncated));
        assert_eq!(
            unframe(&[1, 0x7f, 0, 0, 0]),
            Err(FramingError::TooLarge(0x7f00_0000))
        );
        assert!(matches!(
            unframe(&[1, 0, 0, 0, 4, 1, 2, 3]),
            Err(FramingError::Zlib(_))
        ));
        let mut lying = frame(&[b'x'; 9000], 10);
        lying[4] = lying[4].wrapping_add(1);
        assert!(matches!(unframe(&lying), Err(FramingError::Zlib(_))));
    }

    proptest::proptest! {
        #[test]
        fn framing_round_trips(json in proptest::collection::vec(proptest::num::u8::ANY, 0..20_000), threshold in 0usize..16_384) {
            proptest::prop_assert_eq!(unframe(&frame(&json, threshold)).unwrap(), json);
        }
    }
}
