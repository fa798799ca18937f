//! TLS errors in plain words for the user (never Rust debug forms such as
//! `Other(OtherError(CaUsedAsEndEntity))`), and for an untrusted server
//! certificate the SHA-256 and the options that would trust it.

/// [`describe`], plus what to do about an untrusted server certificate
/// whose SHA-256 is `presented`.
pub fn explain_with(e: &rustls::Error, presented: Option<[u8; 32]>) -> String {
    use rustls::CertificateError as C;
    let text = describe(e);
    let (Some(fp), rustls::Error::InvalidCertificate(c)) = (presented, e) else {
        return text;
    };
    let fp = hex::encode(fp);
    match c {
        C::UnknownIssuer | C::BadSignature | C::Other(_) => format!(
            "{text}. The server's certificate has SHA-256 {fp}: if that is the server's, \
             connect with --pin-sha256 {fp}, or with --ca FILE naming the CA that issued it"
        ),
        C::NotValidForName | C::NotValidForNameContext { .. } => format!(
            "{text}. The server's certificate has SHA-256 {fp}: use --server-name with a name \
             it is valid for, or --pin-sha256 {fp}"
        ),
        _ => text,
    }
}

/// A Rust variant name in plain words: `UnsupportedCertificate` ->
/// "unsupported certificate", `UnknownCA` -> "unknown CA".
pub fn words(name: &str) -> String {
    if let Some((head, inner)) = name.split_once('(') {
        let inner = inner.strip_suffix(')').unwrap_or(inner);
        return format!("{} ({inner})", words(head));
    }
    let name = name.split([' ', '{']).next().unwrap_or(name);
    let chars: Vec<char> = name.chars().collect();
    let mut parts: Vec<String> = Vec::new();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let prev_lower = i > 0 && (chars[i - 1].is_lowercase() || chars[i - 1].is_ascii_digit());
        let acronym_end = i > 0
            && chars[i - 1].is_uppercase()
            && chars.get(i + 1).is_some_and(|n| n.is_lowercase());
        if c.is_uppercase() && (prev_lower || acronym_end) && !cur.is_empty() {
            parts.push(std::mem::take(&mut cur));
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        parts.push(cur);
    }
    parts
        .into_iter()
        .map(|p| {
            if p.len() > 1 && p.chars().all(|c| c.is_uppercase()) {
                p
            } else {
                p.to_lowercase()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A webpki error that rustls passes on as `Other` (its name is all it
/// shows), in plain words.
fn webpki_words(name: &str) -> String {
    match name {
        "CaUsedAsEndEntity" => "the certificate is a CA certificate, not a server's".into(),
        "EndEntityUsedAsCa" => "a server certificate is used as the CA of the chain".into(),
        "UnsupportedCertVersion" => {
            "the certificate is not X.509 v3 (v1 and v2 are not accepted)".into()
        }
        "CertDistrusted" => "the certificate is distrusted".into(),
        "EmptyEkuExtension" => "the certificate's extended key usage is empty".into(),
        "MaximumPathDepthExceeded" => "the certificate chain is too long".into(),
        other => words(other),
    }
}

/// A certificate's name as webpki shows it (`DnsName("vpn.example")`,
/// `IpAddress(10.0.0.1)`): the value alone.
fn san_value(p: &str) -> &str {
    match p.split_once('(') {
        Some((_, v)) => v.strip_suffix(')').unwrap_or(v).trim_matches('"'),
        None => p,
    }
}

/// A rustls error in plain words (never Rust debug forms).
pub fn describe(e: &rustls::Error) -> String {
    use rustls::AlertDescription as A;
    use rustls::CertificateError as C;
    use rustls::Error as E;
    match e {
        E::InvalidCertificate(c) => {
            let what = match c {
                C::UnknownIssuer => {
                    "it is not issued by a CA we trust (self-signed, or an unknown CA)".into()
                }
                C::BadEncoding => "it is not a valid X.509 certificate".into(),
                C::Expired | C::ExpiredContext { .. } => "it has expired".into(),
                C::NotValidYet | C::NotValidYetContext { .. } => "it is not valid yet".into(),
                C::Revoked => "it has been revoked".into(),
                C::BadSignature => "its signature does not verify".into(),
                C::NotValidForName => "it is not valid for this server name".into(),
                C::NotValidForNameContext {
                    expected,
                    presented,
                } => {
                    let names: Vec<&str> = presented.iter().map(|p| san_value(p)).collect();
                    if names.is_empty() {
                        format!("it names no server, so not {}", expected.to_str())
                    } else {
                        format!(
                            "it is valid for {}, not for {}",
                            names.join(", "),
                            expected.to_str()
                        )
                    }
                }
                C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
                    "its extended key usage does not allow this use".into()
                }
                C::ApplicationVerificationFailure => "it was refused".into(),
                C::Other(o) => webpki_words(&o.to_string()),
                other => words(&format!("{other:?}")),
            };
            format!("the server's certificate was refused: {what}")
        }
        E::AlertReceived(a) => match a {
            A::CertificateRequired => {
                "the server requires a client certificate (--cert and --key)".into()
            }
            A::UnknownCA => {
                "the server does not trust the CA that issued our client certificate".into()
            }
            A::BadCertificate => "the server refused our client certificate".into(),
            A::UnsupportedCertificate => "the server refused our client certificate as unsuitable \
                 (its extended key usage must include clientAuth)"
                .into(),
            A::CertificateExpired => "the server says our client certificate has expired".into(),
            A::CertificateRevoked => "the server says our client certificate is revoked".into(),
            A::HandshakeFailure => {
                "the server refused the handshake (no TLS version or cipher suite in common)".into()
            }
            A::ProtocolVersion => "the server speaks no TLS version we do (1.2, 1.3)".into(),
            other => format!(
                "the server ended the handshake (TLS alert: {})",
                words(&format!("{other:?}"))
            ),
        },
        E::General(s) => s.clone(),
        E::NoCertificatesPresented => "the server sent no certificate".into(),
        E::InvalidMessage(_) | E::InappropriateMessage { .. } => {
            "the server's answer is not TLS (is it an HTTPS server?)".into()
        }
        E::InappropriateHandshakeMessage { .. } | E::PeerMisbehaved(_) => {
            "the server broke the TLS protocol".into()
        }
        E::PeerIncompatible(_) => "the server's TLS is incompatible with ours".into(),
        E::DecryptError => "a TLS record did not decrypt".into(),
        E::Other(o) => webpki_words(&o.to_string()),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn rustls_errors_in_plain_words() {
        use rustls::{AlertDescription as A, CertificateError as C, Error as E, OtherError};
        let cases: Vec<(E, &str)> = vec![
            (
                C::UnknownIssuer.into(),
                "the server's certificate was refused: it is not issued by a CA we trust",
            ),
            (
                C::Other(OtherError(Arc::new(webpki_like("CaUsedAsEndEntity")))).into(),
                "the certificate is a CA certificate, not a server's",
            ),
            (
                E::AlertReceived(A::UnsupportedCertificate),
                "refused our client certificate as unsuitable",
            ),
            (
                E::AlertReceived(A::CertificateRequired),
                "requires a client certificate",
            ),
            (
                E::AlertReceived(A::UnknownPSKIdentity),
                "TLS alert: unknown PSK identity",
            ),
            (
                C::NotValidForNameContext {
                    expected: rustls::pki_types::ServerName::try_from("other.test").unwrap(),
                    presented: vec![
                        "DnsName(\"radius.test\")".into(),
                        "IpAddress(10.0.0.1)".into(),
                    ],
                }
                .into(),
                "refused: it is valid for radius.test, 10.0.0.1, not for other.test",
            ),
        ];
        for (e, want) in cases {
            let got = describe(&e);
            assert!(got.contains(want), "{e:?}: {got}");
            assert!(
                !got.contains("Other(")
                    && !got.contains("Alert")
                    && !got.contains("Error")
                    && !got.contains("Name("),
                "{got}"
            );
        }
    }

    /// What webpki's errors look like inside `OtherError`: Display is the
    /// variant name.
    #[derive(Debug)]
    struct WebpkiLike(&'static str);
    impl std::fmt::Display for WebpkiLike {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for WebpkiLike {}
    fn webpki_like(name: &'static str) -> WebpkiLike {
        WebpkiLike(name)
    }

    #[test]
    fn untrusted_server_certificate_gets_its_fingerprint_and_the_options() {
        use rustls::CertificateError as C;
        let fp = [0x5a; 32];
        let hex = "5a".repeat(32);
        let t = explain_with(&C::UnknownIssuer.into(), Some(fp));
        assert!(t.contains(&format!("--pin-sha256 {hex}")), "{t}");
        assert!(t.contains("--ca FILE"), "{t}");
        let t = explain_with(&C::NotValidForName.into(), Some(fp));
        assert!(t.contains("--server-name") && t.contains(&hex), "{t}");
        // Not a certificate problem: no hint.
        let t = explain_with(&rustls::Error::DecryptError, Some(fp));
        assert!(!t.contains("--pin-sha256"), "{t}");
    }

    #[test]
    fn words_from_variant_names() {
        assert_eq!(words("UnsupportedCertificate"), "unsupported certificate");
        assert_eq!(words("UnknownCA"), "unknown CA");
        assert_eq!(words("UnknownPSKIdentity"), "unknown PSK identity");
        assert_eq!(words("NegotiationTimeout"), "negotiation timeout");
        assert_eq!(words("Unknown(0x42)"), "unknown (0x42)");
    }
}
