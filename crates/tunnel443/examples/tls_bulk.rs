//! TLS bulk transfer between two hosts: the ceiling any TLS tunnel can
//! approach there (one TCP connection, one thread each side, large writes,
//! rustls with aws-lc-rs and the same defaults as tunnel443).
//! `scripts/bench` runs it between its namespaces beside the tunnels.
//!
//! ```text
//! tls_bulk server ADDR CERT_DER_OUT      serves transfers one after another
//! tls_bulk client ADDR CERT_DER SECS up|down
//! ```
//! The client asks for `up` (it sends) or `down` (the server sends) for SECS
//! seconds and prints the receiver's figure in Mbit/s.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

const CHUNK: usize = 256 * 1024;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["server", addr, cert_out] => server(addr, cert_out),
        ["client", addr, cert, secs, dir @ ("up" | "down")] => {
            let mbps = client(addr, cert, secs.parse()?, dir == "up")?;
            println!("{mbps:.0}");
            Ok(())
        }
        _ => anyhow::bail!(
            "usage: tls_bulk server ADDR CERT_DER_OUT | tls_bulk client ADDR CERT_DER SECS up|down"
        ),
    }
}

fn server(addr: &str, cert_out: &str) -> anyhow::Result<()> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let cert = rcgen::CertificateParams::new(vec!["bench".to_string()])?.self_signed(&key)?;
    std::fs::write(cert_out, cert.der())?;
    let config = Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::try_from(key.serialize_der()).map_err(anyhow::Error::msg)?,
            )?,
    );
    let listener = TcpListener::bind(addr)?;
    for tcp in listener.incoming() {
        let tcp = tcp?;
        tcp.set_nodelay(true)?;
        let conn = rustls::ServerConnection::new(config.clone())?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        if let Err(e) = serve_one(&mut tls) {
            eprintln!("tls_bulk: transfer failed: {e}");
        }
    }
    Ok(())
}

/// One transfer: a 5-byte request (`u`/`d` and the seconds as u32).
fn serve_one(tls: &mut impl ReadWrite) -> anyhow::Result<()> {
    let mut req = [0u8; 5];
    tls.read_exact(&mut req)?;
    let secs = u32::from_be_bytes(req[1..].try_into()?);
    if req[0] == b'u' {
        let (bytes, elapsed) = sink(tls)?;
        tls.write_all(&bytes.to_be_bytes())?;
        tls.write_all(&(elapsed.as_nanos() as u64).to_be_bytes())?;
        tls.flush()?;
    } else {
        source(tls, Duration::from_secs(secs.into()))?;
    }
    Ok(())
}

fn client(addr: &str, cert: &str, secs: u32, up: bool) -> anyhow::Result<f64> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(std::fs::read(cert)?))?;
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let conn = rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("bench")?)?;
    let tcp = TcpStream::connect(addr)?;
    tcp.set_nodelay(true)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut req = [if up { b'u' } else { b'd' }, 0, 0, 0, 0];
    req[1..].copy_from_slice(&secs.to_be_bytes());
    tls.write_all(&req)?;
    tls.flush()?;
    let (bytes, elapsed) = if up {
        source(&mut tls, Duration::from_secs(secs.into()))?;
        let mut reply = [0u8; 16];
        tls.read_exact(&mut reply)?;
        (
            u64::from_be_bytes(reply[..8].try_into()?),
            Duration::from_nanos(u64::from_be_bytes(reply[8..].try_into()?)),
        )
    } else {
        sink(&mut tls)?
    };
    Ok(bytes as f64 * 8.0 / elapsed.as_secs_f64() / 1e6)
}

trait ReadWrite: Read + Write {
    fn end(&mut self) -> std::io::Result<()>;
}

impl ReadWrite for rustls::StreamOwned<rustls::ServerConnection, TcpStream> {
    fn end(&mut self) -> std::io::Result<()> {
        self.conn.send_close_notify();
        self.flush()
    }
}

impl ReadWrite for rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    fn end(&mut self) -> std::io::Result<()> {
        self.conn.send_close_notify();
        self.flush()
    }
}

/// Writes for `secs`, then close_notify (where the sink stops).
fn source(tls: &mut impl ReadWrite, secs: Duration) -> anyhow::Result<()> {
    let buf = vec![0x5au8; CHUNK];
    let start = Instant::now();
    while start.elapsed() < secs {
        tls.write_all(&buf)?;
    }
    tls.end()?;
    Ok(())
}

/// Reads until close_notify; the clock starts at the first byte.
fn sink(tls: &mut impl ReadWrite) -> anyhow::Result<(u64, Duration)> {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    let mut start = None;
    loop {
        match tls.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                start.get_or_insert_with(Instant::now);
                total += n as u64;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok((total, start.map_or(Duration::ZERO, |s| s.elapsed())))
}
