//! `Proxy-Authenticate` challenge lists (RFC 9110 §11.3 and §11.7.1,
//! formerly RFC 7235 §2.1 and §4.3).
//!
//! ```text
//! challenge  = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
//! auth-param = token BWS "=" BWS ( token / quoted-string )
//! token68    = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
//! ```
//!
//! One header may carry several challenges separated by commas, and a 407
//! may carry several headers. Parsing is lenient and bounded: whatever
//! cannot be read ends the header's list (the challenges before it are
//! kept), never an error, so a garbled header only means fewer schemes.

/// One challenge: a scheme with a token68 or parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme as sent (compare with [`Challenge::is`]).
    pub scheme: String,
    /// The token68 form (NTLM's base64 message), if used.
    pub token68: Option<String>,
    /// Parameters, names lower-cased, quoted strings unescaped.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// True if the scheme is `name` (case-insensitive).
    pub fn is(&self, name: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(name)
    }

    /// The first parameter called `name` (lower-case).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Most challenges read from one header value.
const MAX_CHALLENGES: usize = 16;
/// Most parameters kept per challenge.
const MAX_PARAMS: usize = 32;

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_t68char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn run(&mut self, f: impl Fn(u8) -> bool) -> &str {
        let start = self.i;
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
        // Only ASCII bytes pass the predicates used here.
        std::str::from_utf8(&self.b[start..self.i]).unwrap_or("")
    }

    fn quoted(&mut self) -> Option<String> {
        // At the opening quote.
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return Some(String::from_utf8_lossy(&out).into_owned());
                }
                b'\\' => {
                    self.i += 1;
                    out.push(self.peek()?);
                    self.i += 1;
                }
                b => {
                    out.push(b);
                    self.i += 1;
                }
            }
        }
    }

    /// True if the cursor is at `token BWS "="` followed by something other
    /// than `=` (a parameter rather than a token68 or a new scheme).
    fn at_param(&self) -> bool {
        let mut c = Cursor {
            b: self.b,
            i: self.i,
        };
        if c.run(is_tchar).is_empty() {
            return false;
        }
        c.ws();
        if c.peek() != Some(b'=') {
            return false;
        }
        c.i += 1;
        c.ws();
        c.peek().is_some_and(|b| b != b'=' && b != b',')
    }
}

/// Parses one `Proxy-Authenticate` value into its challenges.
pub fn parse(value: &[u8]) -> Vec<Challenge> {
    let mut c = Cursor { b: value, i: 0 };
    let mut out = Vec::new();
    while out.len() < MAX_CHALLENGES {
        while matches!(c.peek(), Some(b' ' | b'\t' | b',')) {
            c.i += 1;
        }
        if c.peek().is_none() {
            break;
        }
        let scheme = c.run(is_tchar).to_owned();
        if scheme.is_empty() {
            break;
        }
        let mut ch = Challenge {
            scheme,
            token68: None,
            params: Vec::new(),
        };
        c.ws();
        if !c.at_param() {
            // A token68, or nothing (the next challenge or the end).
            let save = c.i;
            let t = c.run(is_t68char).to_owned();
            let eq_start = c.i;
            while c.peek() == Some(b'=') {
                c.i += 1;
            }
            let full = String::from_utf8_lossy(&value[save..c.i]).into_owned();
            c.ws();
            if !t.is_empty() && matches!(c.peek(), None | Some(b',')) {
                ch.token68 = Some(full);
            } else if t.is_empty() && eq_start == c.i {
                // Nothing after the scheme.
            } else {
                // "Scheme other" where `other` starts the next challenge
                // cannot happen without a comma: give up on the rest.
                out.push(ch);
                break;
            }
            out.push(ch);
            continue;
        }
        // A parameter list; stops at a comma followed by a new scheme.
        let mut broken = false;
        loop {
            c.ws();
            let name = c.run(is_tchar).to_ascii_lowercase();
            c.ws();
            if name.is_empty() || c.peek() != Some(b'=') {
                broken = true;
                break;
            }
            c.i += 1;
            c.ws();
            let v = match c.peek() {
                Some(b'"') => match c.quoted() {
                    Some(v) => v,
                    None => {
                        broken = true;
                        break;
                    }
                },
                _ => c.run(is_tchar).to_owned(),
            };
            if ch.params.len() < MAX_PARAMS {
                ch.params.push((name, v));
            }
            c.ws();
            match c.peek() {
                None => break,
                Some(b',') => {
                    while matches!(c.peek(), Some(b' ' | b'\t' | b',')) {
                        c.i += 1;
                    }
                    if !c.at_param() {
                        break;
                    }
                }
                Some(_) => {
                    broken = true;
                    break;
                }
            }
        }
        out.push(ch);
        if broken {
            break;
        }
    }
    out
}

/// Every challenge of every value, in order.
pub fn parse_all<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Vec<Challenge> {
    values.into_iter().flat_map(parse).collect()
}

/// The schemes offered, for messages: `Negotiate, Bearer`.
pub fn scheme_names(challenges: &[Challenge]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for c in challenges {
        if !names.iter().any(|n| n.eq_ignore_ascii_case(&c.scheme)) {
            names.push(&c.scheme);
        }
    }
    crate::head::sanitize(&names.join(", "), 120)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<Challenge> {
        parse(s.as_bytes())
    }

    #[test]
    fn single_and_multiple() {
        let c = p(
            r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe""#,
        );
        assert_eq!(c.len(), 1);
        assert!(c[0].is("digest"));
        assert_eq!(c[0].param("realm"), Some("http-auth@example.org"));
        assert_eq!(c[0].param("qop"), Some("auth, auth-int"));
        assert_eq!(c[0].param("algorithm"), Some("SHA-256"));
        assert_eq!(c[0].param("opaque"), Some("FQhe"));

        let c =
            p(r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple""#);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].param("title"), Some("Login to \"apps\""));
        assert_eq!(c[0].param("type"), Some("1"));
        assert!(c[1].is("basic"));
        assert_eq!(c[1].param("realm"), Some("simple"));

        let c = p("NTLM, Negotiate , Basic realm=\"x\"");
        let names: Vec<_> = c.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(names, ["NTLM", "Negotiate", "Basic"]);
    }

    #[test]
    fn token68() {
        let c = p("NTLM TlRMTVNTUAACAAAA==");
        assert_eq!(c[0].token68.as_deref(), Some("TlRMTVNTUAACAAAA=="));
        assert!(c[0].params.is_empty());
        let c = p("NTLM abc=, Basic realm=r");
        assert_eq!(c[0].token68.as_deref(), Some("abc="));
        assert_eq!(c[1].param("realm"), Some("r"));
        let c = p("Negotiate abc");
        assert_eq!(c[0].token68.as_deref(), Some("abc"));
    }

    #[test]
    fn garbage_keeps_what_came_before() {
        assert!(p("").is_empty());
        assert!(p("  ,, ").is_empty());
        let c = p(r#"Basic realm="x", Digest realm="unterminated"#);
        assert_eq!(c.len(), 2);
        assert!(c[0].is("basic"));
        assert!(c[1].params.is_empty());
        let c = p("Basic realm=\"x\" junk here");
        assert_eq!(c.len(), 1);
        assert!(p("\"quoted\"").is_empty());
        // Bounded.
        let many = "A, ".repeat(100);
        assert_eq!(p(&many).len(), MAX_CHALLENGES);
    }

    #[test]
    fn names_for_messages() {
        let c = parse_all([&b"Negotiate"[..], b"negotiate, Bearer realm=x"]);
        assert_eq!(scheme_names(&c), "Negotiate, Bearer");
    }
}
