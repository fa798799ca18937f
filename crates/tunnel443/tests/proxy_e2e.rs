//! `tunnel443 proxy` against real clients (curl) and raw requests: the
//! positive paths with and without Basic auth, and every refusal the issue
//! lists (403 port, 403 loopback by default, 407, 400, 405, head timeout,
//! concurrency caps), plus idle timeout, half-close and SSTP refusal.

mod common_proxy;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use common_proxy::*;

fn connect_req(target: &str, extra: &str) -> Vec<u8> {
    format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{extra}\r\n").into_bytes()
}

fn curl(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(require("curl"))
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .env_remove("https_proxy")
        .env_remove("HTTPS_PROXY")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const S_SERVER_PAGE: &str = "s_server";

#[test]
fn curl_through_proxy_without_auth() {
    let tls = TlsServer::start();
    let port = tls.addr.port().to_string();
    let mut p = OurProxy::start(&["--allow-net", "127.0.0.0/8", "--allow-port", &port]);
    let (ok, out, err) = curl(&[
        "-p",
        "-x",
        &p.url(),
        &format!("https://127.0.0.1:{port}/"),
        "-k",
    ]);
    assert!(ok, "curl failed: {err}");
    assert!(out.contains(S_SERVER_PAGE), "unexpected page: {out}");
    let line = p.wait_access(&[&format!("target=127.0.0.1:{port}"), "result=ok"], 10);
    assert!(line.contains("status=200"), "{line}");
    // No authentication configured: no user field, and no debug forms.
    assert!(!line.contains("user="), "{line}");
    assert!(!line.contains('"'), "{line}");
    assert!(!line.contains("bytes_up=0 "), "{line}");
    assert!(!line.contains("bytes_down=0 "), "{line}");
    assert!(line.contains("duration_ms="), "{line}");
    assert!(line.contains("client=127.0.0.1:"), "{line}");
}

#[test]
fn curl_through_proxy_with_auth() {
    let tls = TlsServer::start();
    let port = tls.addr.port().to_string();
    let dir = TempDir::new("users");
    let users = dir.file("users");
    std::fs::write(&users, "# users\nbob:b0b:pass\n\n").unwrap();
    set_mode(&users, 0o600);
    let mut p = OurProxy::start(&[
        "--allow-net",
        "127.0.0.0/8",
        "--allow-port",
        &port,
        "--user",
        "alice:s3cret",
        "--users-file",
        users.to_str().unwrap(),
        "--realm",
        "t443 test",
    ]);
    let url = format!("https://127.0.0.1:{port}/");
    // Good credentials, from --user and from the users file.
    for creds in ["alice:s3cret", "bob:b0b:pass"] {
        let (ok, out, err) = curl(&["-p", "-x", &p.url(), "--proxy-user", creds, &url, "-k"]);
        assert!(ok, "curl with {creds} failed: {err}");
        assert!(out.contains(S_SERVER_PAGE));
    }
    p.wait_access(&["user=alice ", "result=ok"], 10);
    p.wait_access(&["user=bob ", "result=ok"], 10);
    // Wrong password and no credentials: 407.
    let (ok, _, err) = curl(&[
        "-p",
        "-x",
        &p.url(),
        "--proxy-user",
        "alice:wrong",
        &url,
        "-k",
    ]);
    assert!(!ok);
    assert!(err.contains("407"), "curl stderr: {err}");
    let (ok, _, err) = curl(&["-p", "-x", &p.url(), &url, "-k"]);
    assert!(!ok);
    assert!(err.contains("407"), "curl stderr: {err}");
    p.wait_access(
        &["status=407", "result=auth_required", "rejected_user=alice "],
        10,
    );
    // The challenge names the realm.
    let (code, head, _) = raw_request(p.addr, &connect_req(&format!("127.0.0.1:{port}"), ""));
    assert_eq!(code, 407);
    assert!(
        head.contains("Proxy-Authenticate: Basic realm=\"t443 test\"\r\n"),
        "{head}"
    );
}

#[test]
fn disallowed_port_is_403() {
    let echo = echo_server();
    let mut p = OurProxy::start(&["--allow-net", "127.0.0.0/8"]);
    let (code, head, _) = raw_request(p.addr, &connect_req(&echo.to_string(), ""));
    assert_eq!(code, 403, "{head}");
    p.wait_access(&["status=403", "result=port_denied"], 10);
    let (code, _, _) = raw_request(p.addr, &connect_req("127.0.0.1:22", ""));
    assert_eq!(code, 403);
}

/// Credentials first (407), policy second (403): a client without valid
/// credentials learns nothing about the allowed ports or networks, and the
/// 403 for an authenticated user names that user in the access log.
#[test]
fn authentication_comes_before_the_port_and_address_policy() {
    let mut p = OurProxy::start(&["--user", "alice:s3cret"]);
    let good = "Proxy-Authorization: Basic YWxpY2U6czNjcmV0\r\n";
    let wrong = "Proxy-Authorization: Basic YWxpY2U6d3Jvbmc=\r\n";
    for target in ["example.com:22", "127.0.0.1:22", "127.0.0.1:443"] {
        let (code, head, _) = raw_request(p.addr, &connect_req(target, ""));
        assert_eq!(code, 407, "{target} without credentials: {head}");
        let (code, head, _) = raw_request(p.addr, &connect_req(target, wrong));
        assert_eq!(code, 407, "{target} with a wrong password: {head}");
        let (code, head, _) = raw_request(p.addr, &connect_req(target, good));
        assert_eq!(code, 403, "{target} authenticated: {head}");
    }
    let line = p.wait_access(&["target=example.com:22", "status=403"], 10);
    assert!(line.contains("user=alice "), "{line}");
    assert!(line.contains("result=port_denied"), "{line}");
    let line = p.wait_access(&["target=127.0.0.1:443", "status=403"], 10);
    assert!(line.contains("user=alice "), "{line}");
    assert!(line.contains("result=net_denied"), "{line}");
    let line = p.wait_access(&["target=example.com:22", "status=407"], 10);
    assert!(!line.contains("user="), "{line}");
    p.wait_access(&["status=407", "rejected_user=alice "], 10);
}

#[test]
fn loopback_target_denied_by_default() {
    let tls = TlsServer::start();
    let port = tls.addr.port().to_string();
    let mut p = OurProxy::start(&["--allow-port", &port]);
    for target in [
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        format!("localhost:{port}"),
        format!("0.0.0.0:{port}"),
        format!("[::ffff:127.0.0.1]:{port}"),
        format!("169.254.169.254:{port}"),
    ] {
        let (code, head, _) = raw_request(p.addr, &connect_req(&target, ""));
        assert_eq!(code, 403, "{target}: {head}");
    }
    p.wait_access(&["status=403", "result=net_denied"], 10);
    let (ok, _, err) = curl(&[
        "-p",
        "-x",
        &p.url(),
        &format!("https://127.0.0.1:{port}/"),
        "-k",
    ]);
    assert!(!ok);
    assert!(err.contains("403"), "{err}");
    // This host's own non-loopback address (the one with the default
    // route), if it has one: refused before any connection is made.
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    match probe
        .connect("192.0.2.1:9")
        .and_then(|_| probe.local_addr())
    {
        Ok(own) => {
            let (code, head, _) =
                raw_request(p.addr, &connect_req(&format!("{}:{port}", own.ip()), ""));
            assert_eq!(code, 403, "own address {}: {head}", own.ip());
        }
        Err(e) => eprintln!("no default route ({e}); own-address check not run"),
    }
    // A name that the resolver maps to loopback (/etc/hosts) is refused
    // after resolution (or does not resolve at all on this machine).
    let (code, _, _) = raw_request(p.addr, &connect_req(&format!("ip6-localhost:{port}"), ""));
    assert!(code == 403 || code == 502, "ip6-localhost: {code}");
}

#[test]
fn garbage_is_400_and_other_methods_405() {
    let mut p = OurProxy::start(&[]);
    let (code, head, mut s) = raw_request(
        p.addr,
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n",
    );
    assert_eq!(code, 400, "{head}");
    assert!(head.contains("Connection: close"));
    // The body explains, then the proxy closes.
    let mut rest = String::new();
    s.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("CONNECT"), "{rest}");
    let (code, _, _) = raw_request(p.addr, b"CONNECT no-port-here HTTP/1.1\r\n\r\n");
    assert_eq!(code, 400);
    let (code, head, mut s) = raw_request(
        p.addr,
        b"GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
    );
    assert_eq!(code, 405, "{head}");
    assert!(head.contains("Allow: CONNECT\r\n"), "{head}");
    let mut rest = String::new();
    s.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("CONNECT-only"), "{rest}");
    p.wait_access(&["status=400", "result=bad_request"], 10);
    p.wait_access(&["status=405", "result=method_not_allowed"], 10);
    // Oversized head (one huge field, or too many fields): 431.
    let mut huge = b"CONNECT a.example:443 HTTP/1.1\r\nX-Pad: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 20_000));
    huge.extend_from_slice(b"\r\n\r\n");
    let mut many = b"CONNECT a.example:443 HTTP/1.1\r\n".to_vec();
    many.extend(std::iter::repeat_n(&b"X-Pad: a\r\n"[..], 100).flatten());
    many.extend_from_slice(b"\r\n");
    for big in [huge, many] {
        let mut s = TcpStream::connect(p.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = s.write_all(&big);
        let (code, _) = read_head(&mut s);
        assert_eq!(code, 431);
    }
    p.wait_access(&["status=431", "result=head_too_large"], 10);
}

#[test]
fn slow_trickling_head_is_cut_at_the_timeout() {
    let mut p = OurProxy::start(&["--head-timeout", "1"]);
    let mut s = TcpStream::connect(p.addr).unwrap();
    s.set_nodelay(true).unwrap();
    let start = Instant::now();
    let req = b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nX-Slow: yes\r\n\r\n";
    let writer = {
        let mut w = s.try_clone().unwrap();
        std::thread::spawn(move || {
            for b in req.iter() {
                if w.write_all(&[*b]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (code, _) = read_head(&mut s);
    let elapsed = start.elapsed();
    assert_eq!(code, 408);
    assert!(
        elapsed >= Duration::from_millis(900),
        "cut too early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(4),
        "cut too late: {elapsed:?}"
    );
    // The connection is then closed (EOF after the body, while the client
    // is still trickling).
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(start.elapsed() < Duration::from_secs(6));
    let _ = s.shutdown(Shutdown::Both);
    writer.join().unwrap();
    p.wait_access(&["status=408", "result=head_timeout"], 10);
}

fn open_tunnel(proxy: SocketAddr, target: SocketAddr) -> TcpStream {
    let (code, head, s) = raw_request(proxy, &connect_req(&target.to_string(), ""));
    assert_eq!(code, 200, "{head}");
    s
}

#[test]
fn concurrency_cap_refuses_new_tunnels_while_existing_ones_work() {
    let echo = echo_server();
    let port = echo.port().to_string();
    let mut p = OurProxy::start(&[
        "--allow-net",
        "127.0.0.0/8",
        "--allow-port",
        &port,
        "--max-tunnels",
        "2",
    ]);
    let mut a = open_tunnel(p.addr, echo);
    let mut b = open_tunnel(p.addr, echo);
    echo_roundtrip(&mut a, b"first");
    echo_roundtrip(&mut b, b"second");
    let (code, head, _) = raw_request(p.addr, &connect_req(&echo.to_string(), ""));
    assert_eq!(code, 503, "{head}");
    assert!(head.contains("Retry-After"), "{head}");
    // The existing tunnels keep working.
    echo_roundtrip(&mut a, &payload(100_000));
    echo_roundtrip(&mut b, b"still here");
    p.wait_access(&["status=503", "result=busy_total"], 10);
    // Closing one frees its slot.
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut c = loop {
        let (code, _, s) = raw_request(p.addr, &connect_req(&echo.to_string(), ""));
        if code == 200 {
            break s;
        }
        assert!(Instant::now() < deadline, "slot never freed");
        std::thread::sleep(Duration::from_millis(50));
    };
    echo_roundtrip(&mut c, b"third");
    echo_roundtrip(&mut b, b"b again");
}

/// Connects from a chosen loopback source address.
fn connect_from(src: &str, dst: SocketAddr) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(format!("{src}:0").parse().unwrap()).unwrap();
        let s = sock.connect(dst).await.unwrap();
        let s = s.into_std().unwrap();
        s.set_nonblocking(false).unwrap();
        s
    })
}

#[test]
fn per_client_cap() {
    let echo = echo_server();
    let port = echo.port().to_string();
    let mut p = OurProxy::start(&[
        "--allow-net",
        "127.0.0.0/8",
        "--allow-port",
        &port,
        "--max-tunnels-per-client",
        "1",
    ]);
    let req = connect_req(&echo.to_string(), "");
    let mut a = connect_from("127.0.0.1", p.addr);
    a.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    a.write_all(&req).unwrap();
    assert_eq!(read_head(&mut a).0, 200);
    // Same client address: refused.
    let mut b = connect_from("127.0.0.1", p.addr);
    b.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    b.write_all(&req).unwrap();
    assert_eq!(read_head(&mut b).0, 503);
    // Another client address: fine, and both tunnels work.
    let mut c = connect_from("127.0.0.2", p.addr);
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(&req).unwrap();
    assert_eq!(read_head(&mut c).0, 200);
    echo_roundtrip(&mut a, b"from .1");
    echo_roundtrip(&mut c, b"from .2");
    p.wait_access(&["status=503", "result=busy_client"], 10);
}

#[test]
fn idle_tunnel_is_closed() {
    let echo = echo_server();
    let port = echo.port().to_string();
    let mut p = OurProxy::start(&[
        "--allow-net",
        "127.0.0.0/8",
        "--allow-port",
        &port,
        "--idle-timeout",
        "1",
    ]);
    let mut s = open_tunnel(p.addr, echo);
    echo_roundtrip(&mut s, b"hello");
    let t0 = Instant::now();
    let mut buf = [0u8; 16];
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let n = s.read(&mut buf).unwrap();
    assert_eq!(n, 0, "expected EOF");
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    let line = p.wait_access(&["result=idle_timeout"], 10);
    assert!(
        line.contains("bytes_up=5") && line.contains("bytes_down=5"),
        "{line}"
    );
}

#[test]
fn half_close_forwards_everything_then_closes() {
    let echo = echo_server();
    let port = echo.port().to_string();
    let mut p = OurProxy::start(&["--allow-net", "127.0.0.0/8", "--allow-port", &port]);
    // The tunnel data is sent right behind the request head, in one write.
    let data = payload(300_000);
    let mut msg = connect_req(&echo.to_string(), "");
    msg.extend_from_slice(&data);
    let mut s = TcpStream::connect(p.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let w = {
        let mut w = s.try_clone().unwrap();
        std::thread::spawn(move || {
            w.write_all(&msg).unwrap();
            w.shutdown(Shutdown::Write).unwrap();
        })
    };
    let (code, _) = read_head(&mut s);
    assert_eq!(code, 200);
    let mut back = Vec::new();
    s.read_to_end(&mut back).unwrap();
    w.join().unwrap();
    assert_eq!(back.len(), data.len());
    assert!(back == data, "echoed data differs");
    let line = p.wait_access(&["result=ok", "bytes_up=300000", "bytes_down=300000"], 10);
    assert!(line.contains("status=200"), "{line}");
}

#[test]
fn refuse_sstp_by_header() {
    let echo = echo_server();
    let port = echo.port().to_string();
    let mut p = OurProxy::start(&[
        "--allow-net",
        "127.0.0.0/8",
        "--allow-port",
        &port,
        "--refuse-sstp",
    ]);
    let (code, _, _) = raw_request(
        p.addr,
        &connect_req(&echo.to_string(), "SSTPVERSION: 1.0\r\n"),
    );
    assert_eq!(code, 403);
    p.wait_access(&["result=sstp_refused", "sstp=true"], 10);
    let mut s = open_tunnel(p.addr, echo);
    echo_roundtrip(&mut s, b"not sstp");
}

#[test]
fn curl_through_our_proxy_chained_to_squid() {
    let tls = TlsServer::start();
    let port = tls.addr.port().to_string();
    let squid = Squid::start(None);
    let mut p = OurProxy::start(&[
        "--allow-net",
        "127.0.0.0/8",
        "--allow-port",
        &port,
        "--upstream",
        &squid.url(),
    ]);
    let (ok, out, err) = curl(&[
        "-p",
        "-x",
        &p.url(),
        &format!("https://127.0.0.1:{port}/"),
        "-k",
    ]);
    assert!(ok, "curl failed: {err}");
    assert!(out.contains(S_SERVER_PAGE));
    p.wait_access(&["result=ok", &format!("target=127.0.0.1:{port}")], 10);
    squid.wait_access(&format!("CONNECT 127.0.0.1:{port}"), 20);
}

/// A `tunnel443 loadgen` attacker against `proxy`; returns once every one
/// of its connections has been tried (and holds them).
fn proxy_attacker(proxy: SocketAddr, args: &[&str]) -> (Proc, TempDir) {
    let dir = TempDir::new("attacker");
    let mut cmd = Command::new(BIN);
    cmd.env("TUNNEL443_LOG", "warn")
        .args(["loadgen", &proxy.to_string(), "--announce", "--hold", "120"])
        .args(args);
    let mut p = Proc::spawn(cmd, dir.file("attacker.log"), "attacker");
    assert!(
        p.wait_for_output("loadgen: ready", 60),
        "attacker did not start:\n{}",
        p.output()
    );
    (p, dir)
}

/// Issue 12: the proxy under the server's admission control. Idle TCP
/// connections that never send a head, from one address and from fifty:
/// the per-client head cap refuses the one, the total head cap makes room
/// by closing the oldest; a client from another address still gets its
/// tunnel at once, and the refusals are summarised, not logged one by one.
#[test]
fn idle_connections_do_not_keep_a_client_out() {
    let echo = echo_server();
    let port = echo.port().to_string();
    let mut p = OurProxy::start(&[
        "--allow-net",
        "127.0.0.0/8",
        "--allow-port",
        &port,
        "--max-handshakes",
        "100",
        "--max-handshakes-per-client",
        "8",
        "--head-timeout",
        "60",
    ]);
    let one = ["--mode", "idle-tcp", "-n", "300", "--source", "127.2.0.1"];
    let (_a1, _d1) = proxy_attacker(p.addr, &one);
    let mut many = vec!["--mode", "idle-tcp", "-n", "600"];
    let sources: Vec<String> = (1..=50).map(|i| format!("127.2.1.{i}")).collect();
    for s in &sources {
        many.extend(["--source", s.as_str()]);
    }
    let (_a2, _d2) = proxy_attacker(p.addr, &many);
    let started = Instant::now();
    let mut t = open_tunnel(p.addr, echo);
    echo_roundtrip(&mut t, b"through");
    assert!(started.elapsed() < Duration::from_secs(2));
    let log = p.proc.wait_log("closed to make room", 20);
    assert!(
        log.contains("refused at the per-source handshake cap"),
        "{log}"
    );
    let summaries = log.lines().filter(|l| l.contains("admission:")).count();
    assert!(summaries <= 3, "refusals logged one by one:\n{log}");
    // Nor are the ~500 connections closed to make room (503 answers are,
    // at most 64 at a time).
    let access = log
        .lines()
        .filter(|l| l.contains("tunnel443::access"))
        .count();
    assert!(access < 300, "{access} access lines:\n{log}");
}

/// Issue 12 "Soak": the long-running commands run without glibc's thread
/// cache (`memory::without_thread_cache`: its chunks kept the pages of a
/// churn in the RSS). The proxy executes itself again once with the
/// tunable added (the same PID, the operator's other tunables kept); an
/// operator's own `tcache_count` is left as it is.
#[test]
fn the_proxy_runs_without_glibcs_thread_cache_unless_told_otherwise() {
    for (given, expected) in [
        (None, "glibc.malloc.tcache_count=0"),
        (
            Some("glibc.malloc.arena_test=4"),
            "glibc.malloc.arena_test=4:glibc.malloc.tcache_count=0",
        ),
        (
            Some("glibc.malloc.tcache_count=7"),
            "glibc.malloc.tcache_count=7",
        ),
    ] {
        let dir = TempDir::new("tcache");
        let mut cmd = Command::new(BIN);
        cmd.args(["proxy", "--listen", "127.0.0.1:0"])
            .env("TUNNEL443_LOG", "info");
        match given {
            Some(v) => cmd.env("GLIBC_TUNABLES", v),
            None => cmd.env_remove("GLIBC_TUNABLES"),
        };
        let mut p = Proc::spawn(cmd, dir.file("proxy.log"), "tunnel443 proxy");
        let log = p.wait_log("CONNECT proxy listening", 20);
        assert!(!log.contains("could not restart"), "{log}");
        let environ = std::fs::read(format!("/proc/{}/environ", p.child.id())).unwrap();
        // glibc, parsing the tunables at start, ends each value in place
        // (the ':' before the next becomes a NUL): rejoin them.
        let mut tunables: Vec<Vec<u8>> = Vec::new();
        for v in environ.split(|&b| b == 0) {
            if v.starts_with(b"GLIBC_TUNABLES=") {
                tunables.push(v.to_vec());
            } else if let (Some(t), true) = (tunables.last_mut(), v.starts_with(b"glibc.")) {
                t.push(b':');
                t.extend_from_slice(v);
            }
        }
        let want = format!("GLIBC_TUNABLES={expected}");
        assert_eq!(
            tunables,
            [want.as_bytes()],
            "given {given:?}: {:?}",
            tunables
                .iter()
                .map(|t| String::from_utf8_lossy(t))
                .collect::<Vec<_>>()
        );
    }
}
