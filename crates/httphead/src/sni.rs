//! The server name of a TLS ClientHello, read before our own handshake so
//! that a connection for another HTTPS site can be passed on untouched
//! (`[web] sni_passthrough`).
//!
//! Sans-IO: [`peek`] looks at the bytes received so far and says whether it
//! needs more. Only the first TLS record is looked at (RFC 8446 §5.1: a
//! ClientHello may span records, but every client we know of sends it in
//! one); the `server_name` extension is RFC 6066 §3. Anything that is not a
//! ClientHello, or one we cannot read, is [`Peek::NoName`]: the connection
//! then gets our own TLS handshake, which answers it as before.

/// Most bytes [`peek`] needs: one record header and a full record.
pub const MAX_PEEK: usize = 5 + (1 << 14);

/// What the first bytes of a connection say.
#[derive(Debug, PartialEq, Eq)]
pub enum Peek {
    /// More bytes are needed.
    Partial,
    /// No server name to act on (not TLS, no SNI, malformed).
    NoName,
    /// The ClientHello's host name, lower case, without a trailing dot.
    Name(String),
}

/// A bounded reader over a byte slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<usize> {
        self.take(1).map(|b| usize::from(b[0]))
    }
    fn u16(&mut self) -> Option<usize> {
        self.take(2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    }
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(n)
    }
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(n)
    }
}

/// Looks at the first bytes of a connection.
pub fn peek(buf: &[u8]) -> Peek {
    // Record header: handshake (22), version, length.
    if buf.is_empty() {
        return Peek::Partial;
    }
    if buf[0] != 22 {
        return Peek::NoName;
    }
    if buf.len() < 5 {
        return Peek::Partial;
    }
    let len = usize::from(u16::from_be_bytes([buf[3], buf[4]]));
    if len == 0 || len > 1 << 14 {
        return Peek::NoName;
    }
    if buf.len() < 5 + len {
        return Peek::Partial;
    }
    server_name(&buf[5..5 + len]).map_or(Peek::NoName, Peek::Name)
}

/// The host name in a ClientHello handshake message (RFC 8446 §4.1.2).
fn server_name(record: &[u8]) -> Option<String> {
    let mut r = Reader(record);
    if r.u8()? != 1 {
        return None; // not a ClientHello
    }
    let hs_len = r.take(3)?;
    let hs_len =
        usize::from(hs_len[0]) << 16 | usize::from(hs_len[1]) << 8 | usize::from(hs_len[2]);
    // A ClientHello longer than this record is not read.
    let mut r = Reader(r.take(hs_len)?);
    r.take(2 + 32)?; // legacy_version, random
    r.vec8()?; // legacy_session_id
    r.vec16()?; // cipher_suites
    r.vec8()?; // legacy_compression_methods
    let mut exts = Reader(r.vec16()?);
    while !exts.0.is_empty() {
        let ty = exts.u16()?;
        let body = exts.vec16()?;
        if ty != 0 {
            continue;
        }
        // ServerNameList (RFC 6066 §3).
        let mut list = Reader(Reader(body).vec16()?);
        while !list.0.is_empty() {
            let name_type = list.u8()?;
            let name = list.vec16()?;
            if name_type == 0 {
                let name = std::str::from_utf8(name).ok()?;
                let name = name.trim_end_matches('.');
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
                    return None;
                }
                return Some(name.to_ascii_lowercase());
            }
        }
        return None;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello record with these extensions (type, body).
    fn hello(exts: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7; 32]);
        body.push(0); // session id
        body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one suite
        body.extend_from_slice(&[1, 0]); // null compression
        let mut e = Vec::new();
        for (ty, b) in exts {
            e.extend_from_slice(&ty.to_be_bytes());
            e.extend_from_slice(&(b.len() as u16).to_be_bytes());
            e.extend_from_slice(b);
        }
        body.extend_from_slice(&(e.len() as u16).to_be_bytes());
        body.extend_from_slice(&e);
        let mut hs = vec![1, 0];
        hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
        hs.extend_from_slice(&body);
        let mut rec = vec![22, 3, 1];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }

    fn sni(name: &str) -> (u16, Vec<u8>) {
        let mut entry = vec![0];
        entry.extend_from_slice(&(name.len() as u16).to_be_bytes());
        entry.extend_from_slice(name.as_bytes());
        let mut b = (entry.len() as u16).to_be_bytes().to_vec();
        b.extend_from_slice(&entry);
        (0, b)
    }

    #[test]
    fn finds_the_name_after_other_extensions() {
        let rec = hello(&[(10, vec![0, 2, 0, 29]), sni("WWW.Example.com.")]);
        assert_eq!(peek(&rec), Peek::Name("www.example.com".into()));
        for cut in 0..rec.len() {
            assert_eq!(peek(&rec[..cut]), Peek::Partial, "cut {cut}");
        }
        // Bytes after the record (the rest of the flight) do not matter.
        let mut more = rec.clone();
        more.extend_from_slice(&[20, 3, 3, 0, 1, 1]);
        assert_eq!(peek(&more), Peek::Name("www.example.com".into()));
    }

    #[test]
    fn no_name() {
        assert_eq!(peek(&hello(&[(10, vec![0, 2, 0, 29])])), Peek::NoName);
        assert_eq!(peek(b"GET / HTTP/1.1\r\n\r\n"), Peek::NoName);
        assert_eq!(peek(b"\x16\x03\x01\x00\x00"), Peek::NoName);
        // Truncated inside the record: lengths that lie are not followed.
        let mut rec = hello(&[sni("a.example")]);
        let n = rec.len();
        rec[n - 11] = 0xff;
        assert_eq!(peek(&rec), Peek::NoName);
        // A name with a space or a control byte is not one.
        assert_eq!(peek(&hello(&[sni("a b")])), Peek::NoName);
        // Nothing but the root (found by the fuzz target).
        assert_eq!(peek(&hello(&[sni(".")])), Peek::NoName);
        // Not a ClientHello.
        let mut rec = hello(&[sni("a.example")]);
        rec[5] = 2;
        assert_eq!(peek(&rec), Peek::NoName);
    }

    #[test]
    fn every_byte_string_is_answered() {
        // Deterministic pseudo-random inputs: never a panic.
        let mut x: u32 = 1;
        for _ in 0..2000 {
            let mut rec = hello(&[sni("x.example")]);
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let i = (x as usize >> 4) % rec.len();
            rec[i] = (x >> 24) as u8;
            let _ = peek(&rec);
        }
    }
}
