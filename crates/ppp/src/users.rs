//! The users file: local credentials for the authenticator (no IO here —
//! [`Users::parse`] reads a `&str`, [`Users::to_file_string`] writes one).
//!
//! # Format
//!
//! One user per line, `name:method:value`:
//!
//! ```text
//! # comment lines and blank lines are ignored
//! alice:plain:correct horse battery staple
//! bob:nthash:8846f7eaee8fb117ad06bdd830b7586c
//! CORP\carol:plain:pa:ss:word
//! ```
//!
//! * `name` is everything before the first `:`; it is matched exactly
//!   (case-sensitive, including any `DOMAIN\` or `@realm` the client sends).
//!   It may not be empty, contain `:`, or start with `#`.
//! * `plain:<password>`: the password is the rest of the line, byte for byte
//!   (it may contain `:` and spaces; a trailing `\r` of a CRLF file is
//!   removed). Works with every method.
//! * `nthash:<32 hex digits>`: the NT hash, MD4(UTF-16LE(password)), as
//!   produced by [`crate::nt_hash`] or `tunnel443 hash-password`-style tools.
//!   Enough for **MS-CHAPv2, EAP-MSCHAPv2 and PAP**, which is why it is the
//!   recommended form. **CHAP-MD5 needs the plaintext** (`plain:`): a user
//!   stored as `nthash` always fails CHAP-MD5.
//!
//! Errors name the (1-based) line. Lookups and verification go through
//! [`Users::verify`], which compares in constant time and gives unknown users
//! the same answer as wrong passwords.

use std::collections::BTreeMap;

use thiserror::Error;

use crate::auth::{self, Password, Proof, Secret, Verdict};
use crate::keys::{hex_decode, NtHash};

/// A users-file error, with the line it is on.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("users file line {line}: {kind}")]
pub struct UsersError {
    /// 1-based line number (0 for errors not tied to a line).
    pub line: usize,
    /// What is wrong.
    pub kind: UsersErrorKind,
}

/// What is wrong with a users-file line.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum UsersErrorKind {
    /// Fewer than three `:`-separated fields.
    #[error("expected name:method:value")]
    MissingField,
    /// The name is empty.
    #[error("empty user name")]
    EmptyName,
    /// A method other than `plain` or `nthash`.
    #[error("unknown method {0:?} (expected plain or nthash)")]
    UnknownMethod(String),
    /// `nthash` value is not 32 hex digits.
    #[error("nthash value must be 32 hex digits")]
    BadNtHash,
    /// The same name appears twice.
    #[error("duplicate user {0:?}")]
    Duplicate(String),
    /// A name or password that cannot be written to the file.
    #[error("name or password contains a character the file cannot hold")]
    Unrepresentable,
}

/// The parsed users file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Users {
    users: BTreeMap<String, Secret>,
}

impl Users {
    /// An empty set.
    pub fn new() -> Self {
        Users::default()
    }

    /// Parses a users file.
    pub fn parse(text: &str) -> Result<Self, UsersError> {
        let mut u = Users::new();
        for (i, raw) in text.split('\n').enumerate() {
            let line = i + 1;
            let l = raw.strip_suffix('\r').unwrap_or(raw);
            if l.trim().is_empty() || l.trim_start().starts_with('#') {
                continue;
            }
            let err = |kind| UsersError { line, kind };
            let mut parts = l.splitn(3, ':');
            let (Some(name), Some(method), Some(value)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(err(UsersErrorKind::MissingField));
            };
            if name.is_empty() {
                return Err(err(UsersErrorKind::EmptyName));
            }
            let secret = match method {
                "plain" => Secret::Password(Password::new(value)),
                "nthash" => Secret::NtHash(NtHash::from_bytes(
                    hex_decode::<16>(value.trim().as_bytes())
                        .ok_or(err(UsersErrorKind::BadNtHash))?,
                )),
                m => return Err(err(UsersErrorKind::UnknownMethod(m.to_string()))),
            };
            if u.users.insert(name.to_string(), secret).is_some() {
                return Err(err(UsersErrorKind::Duplicate(name.to_string())));
            }
        }
        Ok(u)
    }

    /// Adds or replaces a user. Names with `:`, line breaks or a leading `#`,
    /// and plaintext passwords with line breaks, are refused.
    pub fn insert(&mut self, name: &str, secret: Secret) -> Result<(), UsersError> {
        let bad_name = name.is_empty()
            || name.contains([':', '\n', '\r'])
            || name.trim_start().starts_with('#');
        let bad_pw = match &secret {
            Secret::Password(p) => {
                p.as_bytes().iter().any(|&b| b == b'\n' || b == b'\r') || p.as_str().is_none()
            }
            Secret::NtHash(_) => false,
        };
        if bad_name || bad_pw {
            return Err(UsersError {
                line: 0,
                kind: UsersErrorKind::Unrepresentable,
            });
        }
        self.users.insert(name.to_string(), secret);
        Ok(())
    }

    /// Removes a user; true if it existed.
    pub fn remove(&mut self, name: &str) -> bool {
        self.users.remove(name).is_some()
    }

    /// The stored secret of a user.
    pub fn get(&self, name: &str) -> Option<&Secret> {
        self.users.get(name)
    }

    /// The user names, in sorted order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(String::as_str)
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// True if there are no users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Writes the file (sorted by name).
    pub fn to_file_string(&self) -> String {
        let mut s = String::new();
        for (name, secret) in &self.users {
            s.push_str(name);
            match secret {
                Secret::Password(p) => {
                    s.push_str(":plain:");
                    s.push_str(p.as_str().unwrap_or_default());
                }
                Secret::NtHash(h) => {
                    s.push_str(":nthash:");
                    s.push_str(&h.to_hex());
                }
            }
            s.push('\n');
        }
        s
    }

    /// Verifies `proof` for `username` (the synchronous local verifier). An
    /// unknown user is checked against a dummy secret so the work done and
    /// the answer are the same as for a wrong password.
    pub fn verify(&self, username: &str, proof: &Proof) -> Verdict {
        match self.users.get(username) {
            Some(s) => auth::verify(proof, s),
            None => {
                let dummy = Secret::NtHash(NtHash::from_bytes([0x5a; 16]));
                let _ = auth::verify(proof, &dummy);
                Verdict::reject("Authentication failed")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::nt_password_hash;

    #[test]
    fn parse_and_write_round_trip() {
        let text = "# users\n\nalice:plain:correct horse\r\nbob:nthash:8846F7EAEE8FB117AD06BDD830B7586C\nCORP\\carol:plain:pa:ss\n";
        let u = Users::parse(text).unwrap();
        assert_eq!(u.len(), 3);
        assert_eq!(
            u.names().collect::<Vec<_>>(),
            ["CORP\\carol", "alice", "bob"]
        );
        assert_eq!(
            u.get("alice"),
            Some(&Secret::Password(Password::new("correct horse")))
        );
        // 8846f7ea... is the well-known NT hash of "password".
        assert_eq!(
            u.get("bob"),
            Some(&Secret::NtHash(nt_password_hash("password")))
        );
        assert_eq!(
            u.get("CORP\\carol"),
            Some(&Secret::Password(Password::new("pa:ss")))
        );
        let written = u.to_file_string();
        assert!(written.contains("bob:nthash:8846f7eaee8fb117ad06bdd830b7586c\n"));
        assert_eq!(Users::parse(&written).unwrap(), u);
    }

    #[test]
    fn errors_name_the_line() {
        let e = Users::parse("a:plain:x\n\nb:plain\n").unwrap_err();
        assert_eq!(
            e,
            UsersError {
                line: 3,
                kind: UsersErrorKind::MissingField
            }
        );
        assert_eq!(
            e.to_string(),
            "users file line 3: expected name:method:value"
        );
        let e = Users::parse("a:md5:x").unwrap_err();
        assert_eq!(e.kind, UsersErrorKind::UnknownMethod("md5".into()));
        assert_eq!(
            Users::parse("a:nthash:abc").unwrap_err().kind,
            UsersErrorKind::BadNtHash
        );
        assert_eq!(
            Users::parse(":plain:x").unwrap_err().kind,
            UsersErrorKind::EmptyName
        );
        let e = Users::parse("a:plain:x\na:plain:y").unwrap_err();
        assert_eq!((e.line, e.kind), (2, UsersErrorKind::Duplicate("a".into())));
    }

    #[test]
    fn insert_refuses_unrepresentable() {
        let mut u = Users::new();
        assert!(u
            .insert("a:b", Secret::Password(Password::new("x")))
            .is_err());
        assert!(u
            .insert("#a", Secret::Password(Password::new("x")))
            .is_err());
        assert!(u
            .insert("a", Secret::Password(Password::new("x\ny")))
            .is_err());
        u.insert("a", Secret::NtHash(nt_password_hash("x")))
            .unwrap();
        assert!(u.remove("a"));
        assert!(u.is_empty());
    }

    #[test]
    fn verify_unknown_user_and_chap_md5_with_hash() {
        let u =
            Users::parse("h:nthash:8846f7eaee8fb117ad06bdd830b7586c\np:plain:password").unwrap();
        let pap = Proof::Pap {
            password: Password::new("password"),
        };
        assert!(u.verify("h", &pap).is_accept());
        assert!(u.verify("p", &pap).is_accept());
        assert!(!u.verify("nobody", &pap).is_accept());
        let ch = vec![1; 16];
        let md5 = Proof::ChapMd5 {
            id: 1,
            challenge: ch.clone(),
            response: auth::chap::md5_response(1, b"password", &ch),
        };
        assert!(u.verify("p", &md5).is_accept());
        assert!(!u.verify("h", &md5).is_accept(), "CHAP-MD5 needs plain");
    }
}
