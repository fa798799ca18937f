//! Runs one PPP engine over stdin/stdout, for interop tests against real
//! peers (`interop/sstp_relay.py` carries the frames over SSTP/TLS).
//!
//! Wire format on stdin/stdout: records `[type u8][len u16 BE][data]`:
//! type 0 = one PPP frame (both directions), type 1 (out only) = the HLAK
//! after authentication. Events go to stderr, one line each.
//!
//! Usage: `ppp_stdio server USERS_FILE [METHODS]`,
//!        `ppp_stdio client USER PASSWORD [METHODS]`, or
//!        `ppp_stdio nthash PASSWORD` (prints the users-file NT hash),
//! METHODS = comma list of mschapv2,eap,chap,pap (order matters).
//! The server assigns 10.77.0.2 to the peer (itself 10.77.0.1, DNS 10.77.0.53)
//! and answers ICMP echo requests sent to its own address, so `ping` works.

use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ppp::{
    AuthProtocol, Config, Credentials, Event, Inbound, Ipv4Assignment, Password, Ppp, Role, Secret,
    Users,
};

fn urandom(buf: &mut [u8]) {
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .expect("/dev/urandom");
}

fn methods(s: Option<&String>) -> Option<Vec<AuthProtocol>> {
    s.map(|s| {
        s.split(',')
            .map(|m| match m {
                "mschapv2" => AuthProtocol::MsChapV2,
                "eap" => AuthProtocol::Eap,
                "chap" => AuthProtocol::ChapMd5,
                "pap" => AuthProtocol::Pap,
                other => panic!("unknown method {other}"),
            })
            .collect()
    })
}

fn write_record(out: &mut impl Write, t: u8, data: &[u8]) {
    let mut v = vec![t];
    v.extend_from_slice(&(data.len() as u16).to_be_bytes());
    v.extend_from_slice(data);
    out.write_all(&v).and_then(|_| out.flush()).expect("stdout");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Answers an ICMP echo request to `me` (IPv4, no options needed).
fn icmp_reply(pkt: &[u8], me: Ipv4Addr) -> Option<Vec<u8>> {
    let ihl = usize::from(pkt.first()? & 0x0f) * 4;
    if pkt.len() < ihl + 8 || pkt[9] != 1 || pkt[16..20] != me.octets() || pkt[ihl] != 8 {
        return None;
    }
    let mut r = pkt.to_vec();
    r.copy_within(12..16, 16);
    r[12..16].copy_from_slice(&me.octets());
    r[8] = 64;
    r[10..12].copy_from_slice(&[0, 0]);
    let sum = |d: &[u8]| {
        let mut s: u32 = d
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
            .sum();
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    };
    let h = sum(&r[..ihl]);
    r[10..12].copy_from_slice(&h.to_be_bytes());
    r[ihl] = 0;
    r[ihl + 2..ihl + 4].copy_from_slice(&[0, 0]);
    let c = sum(&r[ihl..]);
    r[ihl + 2..ihl + 4].copy_from_slice(&c.to_be_bytes());
    Some(r)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let now = Instant::now();
    if args.get(1).map(String::as_str) == Some("nthash") {
        println!("{}", ppp::nt_hash(&args[2]).to_hex());
        return;
    }
    let (role, mut cfg, users) = match args.get(1).map(String::as_str) {
        Some("server") => {
            let text = std::fs::read_to_string(&args[2]).expect("users file");
            let users = Users::parse(&text).expect("users file");
            let mut cfg = Config::server();
            if let Some(m) = methods(args.get(3)) {
                cfg.auth_protocols = m;
            }
            (Role::Authenticator, cfg, Some(users))
        }
        Some("client") => {
            let creds = Credentials {
                username: args[2].clone(),
                secret: Secret::Password(Password::new(args[3].as_str())),
            };
            let mut cfg = Config::client(creds);
            if let Some(m) = methods(args.get(4)) {
                cfg.auth_protocols = m;
            }
            (Role::Peer, cfg, None)
        }
        _ => {
            eprintln!("usage: ppp_stdio server USERS [METHODS] | client USER PASSWORD [METHODS]");
            std::process::exit(2);
        }
    };
    cfg.echo_interval = Some(Duration::from_secs(10));
    let mut e = Ppp::new(cfg, role, now, Box::new(urandom));
    let (tx, rx) = mpsc::channel::<Option<Vec<u8>>>();
    std::thread::spawn(move || {
        let mut inp = std::io::stdin().lock();
        loop {
            let mut h = [0u8; 3];
            if inp.read_exact(&mut h).is_err() {
                let _ = tx.send(None);
                return;
            }
            let mut d = vec![0u8; usize::from(u16::from_be_bytes([h[1], h[2]]))];
            if inp.read_exact(&mut d).is_err() {
                let _ = tx.send(None);
                return;
            }
            if tx.send(Some(d)).is_err() {
                return;
            }
        }
    });
    let mut out = std::io::stdout().lock();
    let local = Ipv4Addr::new(10, 77, 0, 1);
    e.open(Instant::now());
    loop {
        while let Some(f) = e.poll_transmit() {
            eprintln!("ppp_stdio: tx {}", hex(&f));
            write_record(&mut out, 0, &f);
        }
        while let Some(ev) = e.poll_event() {
            eprintln!("ppp_stdio: event {ev:?}");
            match ev {
                Event::AuthRequest(r) => {
                    let v = users
                        .as_ref()
                        .map(|u| u.verify(&r.username, &r.proof))
                        .unwrap();
                    e.auth_verdict(Instant::now(), r.id, v).expect("verdict");
                }
                Event::Authenticated { hlak, .. } => write_record(&mut out, 1, hlak.as_bytes()),
                Event::NeedIpv4Address { .. } => {
                    e.set_ipv4(
                        Instant::now(),
                        Ipv4Assignment {
                            local,
                            peer: Ipv4Addr::new(10, 77, 0, 2),
                            dns1: Some(Ipv4Addr::new(10, 77, 0, 53)),
                            dns2: None,
                        },
                    )
                    .expect("set_ipv4");
                }
                Event::LinkDown { .. } => {
                    while let Some(f) = e.poll_transmit() {
                        write_record(&mut out, 0, &f);
                    }
                    std::process::exit(0);
                }
                _ => {}
            }
        }
        let wait = e
            .poll_timeout()
            .map(|t| t.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_secs(3600));
        match rx.recv_timeout(wait) {
            Ok(Some(f)) => {
                eprintln!("ppp_stdio: rx {}", hex(&f));
                let reply = match e.handle_frame(Instant::now(), &f) {
                    Some(Inbound::Ipv4(p)) => {
                        eprintln!("ppp_stdio: ipv4 packet {} bytes", p.len());
                        icmp_reply(p, local)
                    }
                    Some(Inbound::Ipv6(p)) => {
                        eprintln!("ppp_stdio: ipv6 packet {} bytes", p.len());
                        None
                    }
                    None => None,
                };
                if let Some(r) = reply.and_then(|r| e.send_ip(&r).ok()) {
                    write_record(&mut out, 0, &r);
                }
            }
            Ok(None) => {
                e.lower_down(Instant::now());
            }
            Err(mpsc::RecvTimeoutError::Timeout) => e.handle_timeout(Instant::now()),
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}
