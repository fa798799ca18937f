//! HTTP Digest proxy authentication, client side (RFC 7616).
//!
//! * §3.3: the challenge's `realm`, `nonce`, `opaque`, `stale`,
//!   `algorithm` (MD5, SHA-256, SHA-512-256 and their `-sess` variants)
//!   and `qop` (we answer `auth`; a challenge without `qop` gets the
//!   RFC 2069 compatible response).
//! * §3.4.1-3.4.3: `response = KD(H(A1), nonce:nc:cnonce:qop:H(A2))` with
//!   `A1 = user:realm:password` (`-sess`: `H(A1):nonce:cnonce`) and
//!   `A2 = method:request-target`; for CONNECT the request-target is the
//!   `host:port` authority.
//! * §3.4.4: `userhash=true` sends `H(user:realm)` as the user name;
//!   §3.4.4 also gives `username*` (RFC 5987 encoding) for names that
//!   cannot be quoted.
//! * §3.4 "nc": the caller counts requests per nonce, so one nonce serves
//!   several requests (one per reconnect) until the proxy says `stale=true`.

use std::fmt::Write as _;

use md5::Md5;
use sha2::{Digest as _, Sha256, Sha512_256};

use crate::basic::Credentials;
use crate::challenge::Challenge;

/// The hash algorithm of a Digest challenge (RFC 7616 §3.3, §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// `MD5` (also when the challenge names none).
    Md5,
    /// `SHA-256`.
    Sha256,
    /// `SHA-512-256`.
    Sha512_256,
}

impl Algorithm {
    fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha512_256 => "SHA-512-256",
        }
    }

    fn hash(self, data: &[u8]) -> String {
        match self {
            Algorithm::Md5 => hex(&Md5::digest(data)),
            Algorithm::Sha256 => hex(&Sha256::digest(data)),
            Algorithm::Sha512_256 => hex(&Sha512_256::digest(data)),
        }
    }
}

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// A Digest challenge we can answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestChallenge {
    realm: String,
    nonce: String,
    opaque: Option<String>,
    algorithm: Algorithm,
    sess: bool,
    qop_auth: bool,
    stale: bool,
    userhash: bool,
}

impl DigestChallenge {
    /// Reads a `Digest` challenge. `None` if it is not one, lacks `realm`
    /// or `nonce`, names an algorithm we do not know, or offers only
    /// `qop=auth-int`.
    pub fn from_challenge(c: &Challenge) -> Option<Self> {
        if !c.is("digest") {
            return None;
        }
        let alg = c.param("algorithm").unwrap_or("MD5");
        // A non-ASCII value may put the cut inside a character: then it
        // cannot end in "-sess" anyway (found by the proxy_auth fuzzer).
        let cut = alg
            .len()
            .checked_sub(5)
            .filter(|&n| alg.is_char_boundary(n));
        let (base, sess) = match cut {
            Some(n) if alg[n..].eq_ignore_ascii_case("-sess") => (&alg[..n], true),
            _ => (alg, false),
        };
        let algorithm = [Algorithm::Md5, Algorithm::Sha256, Algorithm::Sha512_256]
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(base))?;
        let qop_auth = match c.param("qop") {
            None => false,
            Some(q) => {
                if !q.split(',').any(|t| t.trim().eq_ignore_ascii_case("auth")) {
                    return None;
                }
                true
            }
        };
        let flag = |n| c.param(n).is_some_and(|v| v.eq_ignore_ascii_case("true"));
        Some(DigestChallenge {
            realm: c.param("realm")?.to_owned(),
            nonce: c.param("nonce").filter(|n| !n.is_empty())?.to_owned(),
            opaque: c.param("opaque").map(str::to_owned),
            algorithm,
            sess,
            qop_auth,
            stale: flag("stale"),
            userhash: flag("userhash"),
        })
    }

    /// `stale=true`: the credentials were right but the nonce expired; retry
    /// with this challenge's nonce without asking for credentials again.
    pub fn stale(&self) -> bool {
        self.stale
    }

    /// The hash algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Ranks challenges: SHA-512-256 and SHA-256 above MD5.
    pub fn strength(&self) -> u8 {
        match self.algorithm {
            Algorithm::Md5 => 1,
            Algorithm::Sha256 => 2,
            Algorithm::Sha512_256 => 3,
        }
    }

    /// The `Proxy-Authorization` value for `method uri` with nonce count
    /// `nc` (1 for the first request with this nonce) and client nonce
    /// `cnonce`.
    pub fn respond(
        &self,
        creds: &Credentials,
        method: &str,
        uri: &str,
        nc: u32,
        cnonce: &str,
    ) -> String {
        let alg = self.algorithm;
        let mut ha1 =
            alg.hash(format!("{}:{}:{}", creds.user(), self.realm, creds.password()).as_bytes());
        if self.sess {
            ha1 = alg.hash(format!("{ha1}:{}:{cnonce}", self.nonce).as_bytes());
        }
        let ha2 = alg.hash(format!("{method}:{uri}").as_bytes());
        let nc_hex = format!("{nc:08x}");
        let response = if self.qop_auth {
            alg.hash(format!("{ha1}:{}:{nc_hex}:{cnonce}:auth:{ha2}", self.nonce).as_bytes())
        } else {
            alg.hash(format!("{ha1}:{}:{ha2}", self.nonce).as_bytes())
        };
        let mut out = String::from("Digest ");
        if self.userhash {
            let uh = alg.hash(format!("{}:{}", creds.user(), self.realm).as_bytes());
            let _ = write!(out, "username=\"{uh}\", userhash=true");
        } else if creds.user().chars().all(|c| (' '..='~').contains(&c)) {
            let _ = write!(out, "username={}", quote(creds.user()));
        } else {
            let _ = write!(out, "username*=UTF-8''{}", ext_value(creds.user()));
        }
        let _ = write!(
            out,
            ", realm={}, nonce={}, uri={}, algorithm={}{}, response=\"{response}\"",
            quote(&self.realm),
            quote(&self.nonce),
            quote(uri),
            alg.name(),
            if self.sess { "-sess" } else { "" },
        );
        if let Some(o) = &self.opaque {
            let _ = write!(out, ", opaque={}", quote(o));
        }
        if self.qop_auth || self.sess {
            let _ = write!(out, ", cnonce={}", quote(cnonce));
        }
        if self.qop_auth {
            let _ = write!(out, ", qop=auth, nc={nc_hex}");
        }
        out
    }
}

/// A quoted-string, escaping `"` and `\`; control characters are dropped
/// (they cannot appear in a header).
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// RFC 8187 `value-chars`: attr-chars as is, other bytes percent-encoded.
fn ext_value(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::challenge::parse;

    fn ch(s: &str) -> Option<DigestChallenge> {
        DigestChallenge::from_challenge(&parse(s.as_bytes())[0])
    }

    fn field(v: &str, name: &str) -> String {
        parse(v.as_bytes())[0].param(name).unwrap().to_owned()
    }

    const RFC_CHALLENGE: &str = r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=ALG, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
    const RFC_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

    #[test]
    fn rfc7616_3_9_1_examples() {
        // RFC 7616 §3.9.1 (with erratum 4495: "Circle of Life").
        let creds = Credentials::new("Mufasa", "Circle of Life").unwrap();
        for (alg, want) in [
            ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
            (
                "SHA-256",
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
        ] {
            let c = ch(&RFC_CHALLENGE.replace("ALG", alg)).unwrap();
            let v = c.respond(&creds, "GET", "/dir/index.html", 1, RFC_CNONCE);
            assert_eq!(field(&v, "response"), want, "{v}");
            assert!(v.starts_with("Digest username=\"Mufasa\", realm=\"http-auth@example.org\", nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", uri=\"/dir/index.html\""), "{v}");
            assert!(v.ends_with(&format!("opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\", cnonce=\"{RFC_CNONCE}\", qop=auth, nc=00000001")), "{v}");
            assert!(v.contains(&format!("algorithm={alg},")), "{v}");
        }
    }

    #[test]
    fn sess_userhash_and_rfc2069() {
        let creds = Credentials::new("Mufasa", "Circle of Life").unwrap();
        // MD5-sess: HA1 = MD5(MD5(user:realm:pass):nonce:cnonce).
        let c = ch(r#"Digest realm="r", nonce="n", qop="auth", algorithm=MD5-sess"#).unwrap();
        let v = c.respond(&creds, "CONNECT", "h:443", 2, "c");
        let h = |s: String| Algorithm::Md5.hash(s.as_bytes());
        let ha1 = h(format!("{}:n:c", h("Mufasa:r:Circle of Life".into())));
        let want = h(format!(
            "{ha1}:n:00000002:c:auth:{}",
            h("CONNECT:h:443".into())
        ));
        assert_eq!(field(&v, "response"), want);
        assert!(v.contains("algorithm=MD5-sess,"));
        // No qop: RFC 2069 response, no nc/cnonce.
        let c = ch(r#"Digest realm="r", nonce="n""#).unwrap();
        let v = c.respond(&creds, "CONNECT", "h:443", 1, "c");
        let want = h(format!(
            "{}:n:{}",
            h("Mufasa:r:Circle of Life".into()),
            h("CONNECT:h:443".into())
        ));
        assert_eq!(field(&v, "response"), want);
        assert!(!v.contains("nc=") && !v.contains("cnonce"), "{v}");
        // userhash.
        let c = ch(r#"Digest realm="r", nonce="n", qop=auth, algorithm=SHA-256, userhash=true"#)
            .unwrap();
        let v = c.respond(&creds, "CONNECT", "h:443", 1, "c");
        let uh = Algorithm::Sha256.hash(b"Mufasa:r");
        assert!(
            v.starts_with(&format!("Digest username=\"{uh}\", userhash=true,")),
            "{v}"
        );
        // Non-ASCII user names use username*.
        let creds = Credentials::new("Jäsøn Doe", "x").unwrap();
        let c = ch(r#"Digest realm="r", nonce="n", qop=auth"#).unwrap();
        let v = c.respond(&creds, "CONNECT", "h:443", 1, "c");
        assert!(
            v.starts_with("Digest username*=UTF-8''J%C3%A4s%C3%B8n%20Doe,"),
            "{v}"
        );
    }

    #[test]
    fn challenge_checks() {
        let c = ch(r#"Digest realm="r", nonce="n", stale=TRUE, algorithm=sha-512-256"#).unwrap();
        assert!(c.stale());
        assert_eq!(c.algorithm(), Algorithm::Sha512_256);
        assert_eq!(c.strength(), 3);
        assert!(ch(r#"Digest realm="r", nonce="n", algorithm=SHA-1"#).is_none());
        assert!(ch(r#"Digest realm="r", nonce="n", qop="auth-int""#).is_none());
        assert!(ch(r#"Digest realm="r""#).is_none());
        assert!(ch(r#"Digest nonce="n""#).is_none());
        assert!(ch(r#"Digest realm="r", nonce="""#).is_none());
        assert!(ch(r#"Basic realm="r""#).is_none());
        assert!(!ch(r#"Digest realm="r", nonce="n""#).unwrap().stale());
        // A non-ASCII algorithm whose last five bytes start inside a
        // character (the proxy_auth fuzzer's find): refused, not a panic.
        for alg in [&b"\"a\xfa\xfa\xfa\xfa\""[..], b"a\xfa\xfa\xfa\xfa"] {
            let mut v = b"Digest realm=\"r\", nonce=\"n\", algorithm=".to_vec();
            v.extend_from_slice(alg);
            let c = parse(&v);
            assert!(c.is_empty() || DigestChallenge::from_challenge(&c[0]).is_none());
        }
    }

    #[test]
    fn quoting() {
        let creds = Credentials::new("a\"b\\c", "p").unwrap();
        let c = ch(r#"Digest realm="r\"q", nonce="n""#).unwrap();
        let v = c.respond(&creds, "CONNECT", "h:1", 1, "c");
        assert!(
            v.starts_with(r#"Digest username="a\"b\\c", realm="r\"q","#),
            "{v}"
        );
        // It parses back.
        let back = &parse(v.as_bytes())[0];
        assert_eq!(back.param("username"), Some("a\"b\\c"));
    }
}
