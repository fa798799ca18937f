//! What a head says about the body that follows it (RFC 9112 §6), with one
//! policy for every user of the crate:
//!
//! * `Content-Length` must be decimal digits that fit a `u64`; several
//!   fields (or a list) are accepted only when every value is the same
//!   (RFC 9112 §6.3 item 5), else the message is refused as conflicting.
//! * `Transfer-Encoding` together with `Content-Length` is refused (RFC
//!   9112 §6.3 item 3 allows a server to; it is the classic request
//!   smuggling vector). A Transfer-Encoding whose last coding is not
//!   `chunked` is refused too (§6.3 item 4: the length cannot be known).
//!
//! SSTP and IP-HTTPS then require `Content-Length: 18446744073709551615`
//! (MS-SSTP §3.2.4.1, MS-IPHTTPS §3.1.5.2); the web passthrough forwards
//! whatever framing passed these checks.

use crate::head::{sanitize, Headers};

/// How the body of a message is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// Neither header: no body (request), or until the close (response).
    Unframed,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: ..., chunked`.
    Chunked,
}

/// Why the framing headers cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FramingError {
    /// A Content-Length that is not a decimal `u64` (sanitized value).
    #[error("invalid Content-Length \"{0}\"")]
    InvalidLength(String),
    /// Content-Length values that disagree.
    #[error("conflicting Content-Length values")]
    ConflictingLength,
    /// Both Transfer-Encoding and Content-Length.
    #[error("both Transfer-Encoding and Content-Length")]
    TransferEncodingAndLength,
    /// A Transfer-Encoding that does not end in `chunked` (sanitized).
    #[error("unsupported Transfer-Encoding \"{0}\"")]
    UnsupportedTransferEncoding(String),
}

/// The body framing of a message with these header fields, by the policy
/// above.
pub fn body(headers: &Headers) -> Result<Body, FramingError> {
    let mut length: Option<u64> = None;
    for h in headers.get_all("content-length") {
        let text = String::from_utf8_lossy(h.value());
        for item in text.split(',') {
            let item = item.trim_matches([' ', '\t']);
            let v = if !item.is_empty() && item.bytes().all(|b| b.is_ascii_digit()) {
                item.parse::<u64>().ok()
            } else {
                None
            };
            let Some(v) = v else {
                return Err(FramingError::InvalidLength(sanitize(&text, 64)));
            };
            if length.is_some_and(|l| l != v) {
                return Err(FramingError::ConflictingLength);
            }
            length = Some(v);
        }
    }
    let codings: Vec<String> = headers
        .get_all("transfer-encoding")
        .flat_map(|h| {
            String::from_utf8_lossy(h.value())
                .split(',')
                .map(|c| c.trim_matches([' ', '\t']).to_ascii_lowercase())
                .filter(|c| !c.is_empty())
                .collect::<Vec<_>>()
        })
        .collect();
    if headers.contains("transfer-encoding") {
        if length.is_some() {
            return Err(FramingError::TransferEncodingAndLength);
        }
        return match codings.last() {
            Some(last) if last == "chunked" => Ok(Body::Chunked),
            _ => Err(FramingError::UnsupportedTransferEncoding(sanitize(
                &codings.join(", "),
                64,
            ))),
        };
    }
    Ok(length.map_or(Body::Unframed, Body::Length))
}

/// The first Transfer-Encoding value (sanitized), for refusals of
/// protocols that carry a raw stream and cannot take any coding.
pub fn transfer_encoding(headers: &Headers) -> Option<String> {
    headers
        .get("transfer-encoding")
        .map(|h| sanitize(&String::from_utf8_lossy(h.value()), 64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Header;

    fn hs(fields: &[(&str, &str)]) -> Headers {
        let mut h = Headers::new();
        for (n, v) in fields {
            h.push(Header::new(n, v).unwrap());
        }
        h
    }

    #[test]
    fn lengths() {
        assert_eq!(body(&hs(&[])), Ok(Body::Unframed));
        assert_eq!(body(&hs(&[("Content-Length", "0")])), Ok(Body::Length(0)));
        let max = "18446744073709551615";
        assert_eq!(
            body(&hs(&[("content-length", max), ("Content-Length", max)])),
            Ok(Body::Length(u64::MAX))
        );
        assert_eq!(
            body(&hs(&[("Content-Length", "5, 5")])),
            Ok(Body::Length(5))
        );
        assert_eq!(
            body(&hs(&[("Content-Length", "5"), ("Content-Length", "6")])),
            Err(FramingError::ConflictingLength)
        );
        assert_eq!(
            body(&hs(&[("Content-Length", "5, 6")])),
            Err(FramingError::ConflictingLength)
        );
        for bad in ["+5", "-1", "0x10", "18446744073709551616", "1 2", ""] {
            assert!(
                matches!(
                    body(&hs(&[("Content-Length", bad)])),
                    Err(FramingError::InvalidLength(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn transfer_encodings() {
        assert_eq!(
            body(&hs(&[("Transfer-Encoding", "chunked")])),
            Ok(Body::Chunked)
        );
        assert_eq!(
            body(&hs(&[("Transfer-Encoding", "gzip, Chunked")])),
            Ok(Body::Chunked)
        );
        assert_eq!(
            body(&hs(&[
                ("Transfer-Encoding", "chunked"),
                ("Content-Length", "3")
            ])),
            Err(FramingError::TransferEncodingAndLength)
        );
        assert_eq!(
            body(&hs(&[("Transfer-Encoding", "chunked, gzip")])),
            Err(FramingError::UnsupportedTransferEncoding(
                "chunked, gzip".into()
            ))
        );
        assert_eq!(
            transfer_encoding(&hs(&[("Transfer-Encoding", "chunked")])).as_deref(),
            Some("chunked")
        );
    }
}
