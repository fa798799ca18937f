//! HTTP Basic proxy authentication (RFC 7617) for CONNECT.
//!
//! Luotonen's draft, "Extensibility": the proxy answers `407` with a
//! `Proxy-authenticate` header, and the client repeats the CONNECT with a
//! `Proxy-authorization` header. Credentials never appear in `Debug` output.
//! The server-side check compares SHA-256 digests in constant time, so
//! neither the length nor the content of a configured password leaks through
//! timing, and every configured user is checked on every attempt.

use std::fmt;

use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Why credentials could not be built or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BasicError {
    /// The user name contains `:` or a control character, or is empty.
    #[error("invalid user name")]
    InvalidUser,
    /// The password contains a control character.
    #[error("invalid password")]
    InvalidPassword,
    /// The header is not `Basic <base64 of user:password>`.
    #[error("malformed Basic credentials")]
    Malformed,
}

/// A user name and password. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    user: String,
    password: String,
}

impl Credentials {
    /// Builds credentials. The user must be non-empty without `:` (RFC 7617
    /// §2); neither part may contain control characters.
    pub fn new(user: &str, password: &str) -> Result<Self, BasicError> {
        if user.is_empty() || user.contains(':') || user.chars().any(char::is_control) {
            return Err(BasicError::InvalidUser);
        }
        if password.chars().any(char::is_control) {
            return Err(BasicError::InvalidPassword);
        }
        Ok(Credentials {
            user: user.to_owned(),
            password: password.to_owned(),
        })
    }

    /// Parses `user:password` (the password may contain `:`), as found in a
    /// credentials file or a `--user` option. Trailing CR/LF is ignored.
    pub fn from_colon_pair(s: &str) -> Result<Self, BasicError> {
        let s = s.trim_end_matches(['\r', '\n']);
        let (u, p) = s.split_once(':').ok_or(BasicError::Malformed)?;
        Credentials::new(u, p)
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The `Proxy-Authorization` value: `Basic base64(user:password)`.
    pub fn header_value(&self) -> String {
        let raw = format!("{}:{}", self.user, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    /// Decodes a `Proxy-Authorization` value. The scheme is matched
    /// case-insensitively; the decoded bytes must be UTF-8 `user:password`.
    pub fn from_header_value(v: &[u8]) -> Result<Self, BasicError> {
        let v = v.trim_ascii();
        let sp = v
            .iter()
            .position(|&b| b == b' ' || b == b'\t')
            .ok_or(BasicError::Malformed)?;
        let (scheme, rest) = v.split_at(sp);
        if !scheme.eq_ignore_ascii_case(b"basic") {
            return Err(BasicError::Malformed);
        }
        let token = rest.trim_ascii();
        if token.len() > 4096 {
            return Err(BasicError::Malformed);
        }
        let raw = base64::engine::general_purpose::STANDARD
            .decode(token)
            .map_err(|_| BasicError::Malformed)?;
        let s = String::from_utf8(raw).map_err(|_| BasicError::Malformed)?;
        Credentials::from_colon_pair(&s).map_err(|_| BasicError::Malformed)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Builds the `Proxy-Authenticate` challenge value for `realm`; quotes and
/// backslashes in the realm are escaped, control characters dropped.
pub fn challenge(realm: &str) -> String {
    let mut out = String::from("Basic realm=\"");
    for c in realm.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// True if a `Proxy-Authenticate` value offers the Basic scheme.
pub fn offers_basic(v: &[u8]) -> bool {
    let v = v.trim_ascii_start();
    v.len() >= 5
        && v[..5].eq_ignore_ascii_case(b"basic")
        && v.get(5)
            .is_none_or(|&b| b == b' ' || b == b'\t' || b == b',')
}

struct Entry {
    name: String,
    user_digest: [u8; 32],
    pass_digest: [u8; 32],
}

fn digest(domain: &[u8], s: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(domain);
    h.update(s.as_bytes());
    h.finalize().into()
}

/// The set of users a proxy accepts. Passwords are kept only as digests.
#[derive(Default)]
pub struct BasicUsers {
    entries: Vec<Entry>,
}

impl fmt::Debug for BasicUsers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| &e.name))
            .finish()
    }
}

impl BasicUsers {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a user.
    pub fn insert(&mut self, creds: &Credentials) {
        self.entries.retain(|e| e.name != creds.user);
        self.entries.push(Entry {
            name: creds.user.clone(),
            user_digest: digest(b"user\0", &creds.user),
            pass_digest: digest(b"pass\0", &creds.password),
        });
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no user is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Returns the user name if `creds` match a configured user. Every entry
    /// is compared, in constant time per entry.
    pub fn verify(&self, creds: &Credentials) -> Option<&str> {
        let u = digest(b"user\0", &creds.user);
        let p = digest(b"pass\0", &creds.password);
        let mut found: Option<&str> = None;
        for e in &self.entries {
            let ok = e.user_digest.ct_eq(&u) & e.pass_digest.ct_eq(&p);
            if bool::from(ok) {
                found = Some(&e.name);
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luotonen_example() {
        // "Proxy-authorization: basic aGVsbG86d29ybGQ=" is hello:world.
        let c = Credentials::from_header_value(b"basic aGVsbG86d29ybGQ=").unwrap();
        assert_eq!(c.user(), "hello");
        assert_eq!(c.password(), "world");
        assert_eq!(c.header_value(), "Basic aGVsbG86d29ybGQ=");
    }

    #[test]
    fn rfc7617_example() {
        // RFC 7617 §2: Aladdin / open sesame.
        let c = Credentials::new("Aladdin", "open sesame").unwrap();
        assert_eq!(c.header_value(), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    }

    #[test]
    fn password_with_colon_and_unicode() {
        let c = Credentials::new("ünï", "a:b:c").unwrap();
        let back = Credentials::from_header_value(c.header_value().as_bytes()).unwrap();
        assert_eq!(back, c);
        assert_eq!(
            Credentials::from_colon_pair("u:p:q\n").unwrap().password(),
            "p:q"
        );
    }

    #[test]
    fn malformed_headers() {
        for v in [
            &b""[..],
            b"Basic",
            b"Bearer aGVsbG86d29ybGQ=",
            b"Basic !!!!",
            b"Basic aGVsbG8=",     // "hello": no colon
            b"Basic OndvcmxkCg==", // ":world\n": empty user
            b"Basic /w==",         // not UTF-8
        ] {
            assert!(Credentials::from_header_value(v).is_err(), "{v:?}");
        }
        assert_eq!(Credentials::new("a:b", "x"), Err(BasicError::InvalidUser));
        assert_eq!(
            Credentials::new("a", "x\ny"),
            Err(BasicError::InvalidPassword)
        );
    }

    #[test]
    fn debug_hides_password() {
        let c = Credentials::new("alice", "hunter2").unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn users_verify() {
        let mut users = BasicUsers::new();
        users.insert(&Credentials::new("alice", "pw1").unwrap());
        users.insert(&Credentials::new("bob", "pw2").unwrap());
        users.insert(&Credentials::new("alice", "pw3").unwrap());
        assert_eq!(users.len(), 2);
        let ok = |u, p| users.verify(&Credentials::new(u, p).unwrap());
        assert_eq!(ok("alice", "pw3"), Some("alice"));
        assert_eq!(ok("alice", "pw1"), None);
        assert_eq!(ok("bob", "pw2"), Some("bob"));
        assert_eq!(ok("bob", "pw1"), None);
        assert_eq!(ok("carol", "pw2"), None);
        assert_eq!(ok("bob", ""), None);
        assert!(!format!("{users:?}").contains("pw"));
    }

    #[test]
    fn challenge_and_offer() {
        assert_eq!(challenge("tunnel443"), "Basic realm=\"tunnel443\"");
        assert_eq!(challenge("a\"b\\c\r\n"), "Basic realm=\"a\\\"b\\\\c\"");
        assert!(offers_basic(b"Basic realm=\"x\""));
        assert!(offers_basic(b"  BASIC"));
        assert!(!offers_basic(b"Negotiate"));
        assert!(!offers_basic(b"Basically"));
        assert!(!offers_basic(b"NTLM"));
    }
}
