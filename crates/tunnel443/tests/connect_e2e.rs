//! `tunnel443 connect` (the client side every tunnel client shares, through
//! `dial`) against real proxies: squid, tinyproxy, squid with Basic auth
//! (basic_ncsa_auth + htpasswd), and chains through our own proxy.

mod common_proxy;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common_proxy::*;

/// Sends a payload through `connect` to the echo server; checks it all comes
/// back and the command exits 0 after the remote side closes.
fn assert_echo_through(args: &[&str], env: &[(&str, &str)]) -> String {
    assert_echo_with(args, env, Stdin::CloseAfterEcho)
}

fn assert_echo_with(args: &[&str], env: &[(&str, &str)], mode: Stdin) -> String {
    let data = payload(200_000);
    let (st, out, err) = run_connect(args, env, &data, mode, 60);
    assert!(st.success(), "connect {args:?} failed ({st}): {err}");
    assert_eq!(out.len(), data.len(), "stderr: {err}");
    assert!(out == data, "echoed data differs");
    err
}

#[test]
fn connect_stdio_through_squid() {
    let echo = echo_server();
    let squid = Squid::start(None);
    let err = assert_echo_through(&["--proxy", &squid.url(), &echo.to_string()], &[]);
    assert!(err.contains("tunnel open"), "{err}");
    squid.wait_access(&format!("CONNECT {echo}"), 20);
}

#[test]
fn connect_stdio_through_tinyproxy() {
    let echo = echo_server();
    let tp = Tinyproxy::start();
    assert_echo_through(&["--proxy", &tp.url(), &echo.to_string()], &[]);
    let log = tp.log();
    assert!(log.contains("CONNECT"), "tinyproxy log:\n{log}");
}

#[test]
fn connect_through_squid_with_basic_auth() {
    let echo = echo_server();
    let squid = Squid::start(Some(("vpnuser", "pr0xy-pass")));
    let target = echo.to_string();
    let dir = TempDir::new("creds");

    // No credentials: a clear 407 error naming the proxy.
    let (st, _, err) = run_connect(
        &["--proxy", &squid.url(), &target],
        &[],
        b"x",
        Stdin::CloseAtOnce,
        30,
    );
    assert!(!st.success());
    assert!(err.contains("requires authentication"), "{err}");
    assert!(err.contains("no credentials"), "{err}");
    assert!(err.contains(&squid.addr.to_string()), "{err}");

    // Credentials from a file: CONNECT, 407, retry with Basic.
    let f = dir.file("proxy-creds");
    std::fs::write(&f, "vpnuser:pr0xy-pass\n").unwrap();
    set_mode(&f, 0o600);
    let err = assert_echo_through(
        &[
            "--proxy",
            &squid.url(),
            "--proxy-credentials-file",
            f.to_str().unwrap(),
            &target,
        ],
        &[],
    );
    assert!(
        !err.contains("pr0xy-pass"),
        "password leaked into the log: {err}"
    );

    // Credentials in the URL, sent up front.
    let url = format!("http://vpnuser:pr0xy-pass@{}", squid.addr);
    let err = assert_echo_through(&["--proxy", &url, "--proxy-auth-upfront", &target], &[]);
    assert!(
        !err.contains("pr0xy-pass"),
        "password leaked into the log: {err}"
    );

    // Credentials from the environment, proxy from https_proxy.
    assert_echo_through(
        &[&target],
        &[
            ("https_proxy", &squid.url()),
            ("TUNNEL443_PROXY_USER", "vpnuser"),
            ("TUNNEL443_PROXY_PASSWORD", "pr0xy-pass"),
        ],
    );

    // Wrong password: 407 after the retry.
    let (st, _, err) = run_connect(
        &[
            "--proxy",
            &format!("http://vpnuser:wrong@{}", squid.addr),
            &target,
        ],
        &[],
        b"x",
        Stdin::CloseAtOnce,
        30,
    );
    assert!(!st.success());
    assert!(err.contains("credentials refused"), "{err}");
    assert!(!err.contains("wrong"), "password in the error: {err}");
    squid.wait_access("vpnuser", 20);
}

#[test]
fn connect_stdin_eof_is_a_half_close_through_our_proxy() {
    // Like `ssh`'s ProxyCommand or `nc -N`: stdin ends first, the answer
    // still comes back, because our proxy relays the half-close.
    let echo = echo_server();
    let mut ours = OurProxy::start(&[
        "--allow-net",
        "127.0.0.0/8",
        "--allow-port",
        &echo.port().to_string(),
    ]);
    assert_echo_with(
        &["--proxy", &ours.url(), &echo.to_string()],
        &[],
        Stdin::CloseAtOnce,
    );
    ours.wait_access(&["result=ok", "bytes_up=200000", "bytes_down=200000"], 10);
}

#[test]
fn connect_chain_our_proxy_then_squid() {
    let echo = echo_server();
    let squid = Squid::start(None);
    let mut ours = OurProxy::start(&[
        "--allow-net",
        "127.0.0.0/8",
        "--allow-port",
        &squid.addr.port().to_string(),
    ]);
    // connect -> tunnel443 proxy -> squid -> target: two --proxy hops.
    assert_echo_through(
        &[
            "--proxy",
            &ours.url(),
            "--proxy",
            &squid.url(),
            &echo.to_string(),
        ],
        &[],
    );
    ours.wait_access(&[&format!("target={}", squid.addr), "result=ok"], 10);
    squid.wait_access(&format!("CONNECT {echo}"), 20);
}

#[test]
fn connect_via_our_proxy_with_squid_upstream() {
    let echo = echo_server();
    let squid = Squid::start(Some(("up", "upstream-pw")));
    let upstream = format!("http://up:upstream-pw@{}", squid.addr);
    let mut ours = OurProxy::start(&[
        "--allow-net",
        "127.0.0.0/8",
        "--allow-port",
        &echo.port().to_string(),
        "--upstream",
        &upstream,
        "--user",
        "client:client-pw",
    ]);
    let url = format!("http://client:client-pw@{}", ours.addr);
    // The SSTP header travels through both proxies.
    assert_echo_through(
        &[
            "--proxy",
            &url,
            "--header",
            "SSTPVERSION: 1.0",
            &echo.to_string(),
        ],
        &[],
    );
    ours.wait_access(
        &[
            &format!("target={echo}"),
            "result=ok",
            "user=client ",
            "sstp=true",
        ],
        10,
    );
    squid.wait_access(&format!("CONNECT {echo}"), 20);
}

#[test]
fn connect_errors_are_clear() {
    let echo = echo_server();
    let ours = OurProxy::start(&[
        "--allow-net",
        "127.0.0.0/8",
        "--refuse-sstp",
        "--allow-port",
        &echo.port().to_string(),
    ]);
    // 403 from policy.
    let (st, _, err) = run_connect(
        &[
            "--proxy",
            &ours.url(),
            "--header",
            "SSTPVERSION: 1.0",
            &echo.to_string(),
        ],
        &[],
        b"",
        Stdin::CloseAtOnce,
        30,
    );
    assert!(!st.success());
    assert!(
        err.contains(&format!("proxy {} refused the tunnel", ours.addr)),
        "{err}"
    );
    assert!(err.contains("403"), "{err}");
    // 502 from a dead target.
    let dead = free_port();
    let ours2 = OurProxy::start(&[
        "--allow-net",
        "127.0.0.0/8",
        "--allow-port",
        &dead.to_string(),
    ]);
    let (st, _, err) = run_connect(
        &["--proxy", &ours2.url(), &format!("127.0.0.1:{dead}")],
        &[],
        b"",
        Stdin::CloseAtOnce,
        30,
    );
    assert!(!st.success());
    assert!(
        err.contains("could not reach") && err.contains("502"),
        "{err}"
    );
    // Nothing listening at the proxy address.
    let (st, _, err) = run_connect(
        &[
            "--proxy",
            &format!("http://127.0.0.1:{}", free_port()),
            &echo.to_string(),
        ],
        &[],
        b"",
        Stdin::CloseAtOnce,
        30,
    );
    assert!(!st.success());
    assert!(err.contains("cannot connect to proxy"), "{err}");
    // A proxy that never answers: timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (st, _, err) = run_connect(
        &[
            "--proxy",
            &format!("http://{}", silent.local_addr().unwrap()),
            "--proxy-timeout",
            "1",
            &echo.to_string(),
        ],
        &[],
        b"",
        Stdin::CloseAtOnce,
        30,
    );
    assert!(!st.success());
    assert!(
        err.contains("did not complete the CONNECT handshake"),
        "{err}"
    );
    // Something that is not an HTTP proxy.
    let fake = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let fake_addr = fake.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = fake.accept() {
            let _ = s.write_all(b"SSH-2.0-OpenSSH_9.2\r\n");
            let mut b = [0u8; 1024];
            let _ = s.read(&mut b);
        }
    });
    let (st, _, err) = run_connect(
        &["--proxy", &format!("http://{fake_addr}"), &echo.to_string()],
        &[],
        b"",
        Stdin::CloseAtOnce,
        30,
    );
    assert!(!st.success());
    assert!(err.contains("malformed reply"), "{err}");
}

#[test]
fn connect_honours_no_proxy() {
    let echo = echo_server();
    let squid = Squid::start(None);
    // no_proxy matches the target: direct, squid sees nothing.
    assert_echo_through(
        &[&echo.to_string()],
        &[
            ("https_proxy", &squid.url()),
            ("no_proxy", "localhost,127.0.0.1"),
        ],
    );
    // --no-proxy ignores the environment.
    assert_echo_through(
        &["--no-proxy", &echo.to_string()],
        &[("HTTPS_PROXY", &squid.url())],
    );
    // Then through squid for real, so the access log has something.
    assert_echo_through(&[&echo.to_string()], &[("HTTPS_PROXY", &squid.url())]);
    let line = squid.wait_access("CONNECT", 20);
    let log = squid.access_log();
    assert_eq!(
        log.lines().filter(|l| l.contains("CONNECT")).count(),
        1,
        "{log}\n{line}"
    );
}

#[test]
fn connect_listen_port_forwarder() {
    let echo = echo_server();
    let squid = Squid::start(None);
    let dir = TempDir::new("fwd");
    let mut cmd = std::process::Command::new(BIN);
    cmd.args([
        "connect",
        "--listen",
        "127.0.0.1:0",
        "--proxy",
        &squid.url(),
        &echo.to_string(),
    ]);
    cmd.env("TUNNEL443_LOG", "info");
    let mut fwd = Proc::spawn(cmd, dir.file("fwd.log"), "tunnel443 connect --listen");
    let log = fwd.wait_log("forwarder listening", 20);
    let addr = logged_addr(&log, "forwarder listening");
    let mut a = TcpStream::connect(addr).unwrap();
    let mut b = TcpStream::connect(addr).unwrap();
    echo_roundtrip(&mut a, b"one");
    echo_roundtrip(&mut b, &payload(50_000));
    echo_roundtrip(&mut a, b"one again");
    drop(a);
    drop(b);
    fwd.wait_log("forwarded connection closed", 20);
    let connects = || {
        squid
            .access_log()
            .lines()
            .filter(|l| l.contains("CONNECT"))
            .count()
    };
    wait_until(Duration::from_secs(20), || connects() >= 2);
    let n2 = connects();
    assert_eq!(
        n2,
        2,
        "one tunnel per forwarded connection:\n{}",
        squid.access_log()
    );
}

/// `connect`'s exit codes (see its --help): 2 only for usage errors, 7 for
/// a proxy that cannot be reached or refuses, 1 for a target that cannot
/// be reached directly; each OS error printed once; a proxy's refusal
/// shows the first words of its body.
#[test]
fn connect_exit_codes_and_messages() {
    let run = |args: &[&str]| {
        let (st, _, err) = run_connect(args, &[], b"", Stdin::CloseAtOnce, 30);
        (st.code(), err)
    };
    // The error message (run_connect logs at debug level too).
    let once = |err: &str, text: &str| {
        let msg = err
            .lines()
            .find(|l| l.starts_with("tunnel443: "))
            .unwrap_or_else(|| panic!("no error message in:\n{err}"));
        assert_eq!(msg.matches(text).count(), 1, "{text:?} once in: {msg}");
    };
    // Usage.
    let (code, err) = run(&["not a target"]);
    assert_eq!(code, Some(2), "{err}");
    let (code, err) = run(&[
        "--proxy-credentials-file",
        "/nonexistent/creds",
        "--proxy",
        "http://127.0.0.1:9",
        "h.example:443",
    ]);
    assert_eq!(code, Some(2), "{err}");
    // Nothing listening at the proxy: a proxy failure, the OS error once.
    let dead_proxy = format!("http://127.0.0.1:{}", free_port());
    let (code, err) = run(&["--proxy", &dead_proxy, "h.example:443"]);
    assert_eq!(code, Some(7), "{err}");
    assert!(err.contains("cannot connect to proxy"), "{err}");
    once(&err, "Connection refused");
    // A proxy name that does not resolve: a proxy failure too.
    let (code, err) = run(&["--proxy", "http://proxy.invalid:3128", "h.example:443"]);
    assert_eq!(code, Some(7), "{err}");
    // Nothing listening at the target, directly: 1, the OS error once.
    let (code, err) = run(&["--no-proxy", &format!("127.0.0.1:{}", free_port())]);
    assert_eq!(code, Some(1), "{err}");
    once(&err, "Connection refused");
    // The proxy's 403 and what its body says.
    let ours = OurProxy::start(&[]);
    let (code, err) = run(&["--proxy", &ours.url(), "h.example:22"]);
    assert_eq!(code, Some(7), "{err}");
    assert!(err.contains("403 Forbidden"), "{err}");
    assert!(
        err.contains("the proxy says: Tunnels to port 22 are not allowed."),
        "{err}"
    );
    // A 502 with its body.
    let dead = free_port();
    let ours2 = OurProxy::start(&[
        "--allow-net",
        "127.0.0.0/8",
        "--allow-port",
        &dead.to_string(),
    ]);
    let (code, err) = run(&["--proxy", &ours2.url(), &format!("127.0.0.1:{dead}")]);
    assert_eq!(code, Some(7), "{err}");
    assert!(
        err.contains("502") && err.contains("the proxy says: The target refused"),
        "{err}"
    );
}

/// Squid's refusals are HTML pages: their text, not their markup, is shown.
#[test]
fn connect_shows_the_text_of_squids_error_page() {
    let squid = Squid::start(None);
    // Nothing listens at the target: squid answers 503 with its
    // ERR_CONNECT_FAIL page.
    let (st, _, err) = run_connect(
        &[
            "--proxy",
            &squid.url(),
            &format!("127.0.0.1:{}", free_port()),
        ],
        &[],
        b"",
        Stdin::CloseAtOnce,
        30,
    );
    assert_eq!(st.code(), Some(7), "{err}");
    let msg = err
        .lines()
        .find(|l| l.contains("the proxy says: "))
        .unwrap_or_else(|| panic!("no body text in:\n{err}"));
    assert!(!msg.contains('<'), "markup in the message: {msg}");
    assert!(msg.len() < 600, "{msg}");
}

/// Without --log, TUNNEL443_LOG or -v, `connect` prints nothing on stderr
/// when all goes well: as an ssh ProxyCommand stderr is the user's
/// terminal. `-v` shows the tunnel.
#[test]
fn connect_is_quiet_by_default() {
    let echo = echo_server();
    let ours = OurProxy::start(&[
        "--allow-net",
        "127.0.0.0/8",
        "--allow-port",
        &echo.port().to_string(),
    ]);
    let run = |extra: &[&str]| -> (Option<i32>, Vec<u8>, String) {
        let mut cmd = std::process::Command::new(BIN);
        cmd.arg("connect")
            .args(extra)
            .args(["--proxy", &ours.url(), &echo.to_string()]);
        for v in [
            "TUNNEL443_LOG",
            "https_proxy",
            "HTTPS_PROXY",
            "no_proxy",
            "NO_PROXY",
        ] {
            cmd.env_remove(v);
        }
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        // The request, then end of file: our proxy relays the half-close,
        // the echo comes back and the remote side closes.
        child.stdin.take().unwrap().write_all(b"hello").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("connect did not finish");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            out.stdout,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&[]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, b"hello");
    assert_eq!(err, "", "stderr of a quiet run");
    let (code, _, err) = run(&["-v"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("tunnel open"), "{err}");
    assert!(!err.contains("DEBUG"), "{err}");
}

/// Number of 407 answers in squid's access log.
fn denied_407(squid: &Squid) -> usize {
    squid
        .access_log()
        .lines()
        .filter(|l| l.contains("/407 "))
        .count()
}

/// Digest (RFC 7616) against squid's `digest_file_auth`: a 407 answered
/// with Digest, a wrong password refused after one answer.
#[test]
fn connect_through_squid_with_digest_auth() {
    let echo = echo_server();
    let squid = Squid::start_with(Some(SquidAuth::Digest("dana", "d1gest-pw", "")), None);
    let target = echo.to_string();
    let url = format!("http://dana:d1gest-pw@{}", squid.addr);
    let err = assert_echo_through(&["--proxy", &url, &target], &[]);
    assert!(!err.contains("d1gest-pw"), "password leaked: {err}");
    let line = squid.wait_access("TCP_TUNNEL", 20);
    assert!(line.contains(" dana "), "{line}");

    let (st, _, err) = run_connect(
        &[
            "--proxy",
            &format!("http://dana:wrong@{}", squid.addr),
            &target,
        ],
        &[],
        b"x",
        Stdin::CloseAtOnce,
        30,
    );
    assert_eq!(st.code(), Some(7), "{err}");
    assert!(err.contains("Digest credentials refused (407)"), "{err}");
    assert!(!err.contains("wrong"), "password in the error: {err}");
}

/// Runs a `connect --listen` forwarder through `proxies` to the echo server
/// and makes `n` connections through it, one after the other.
fn forward_n(proxies: &[String], n: usize) -> Proc {
    let echo = echo_server();
    let dir = TempDir::new("fwd");
    let mut cmd = std::process::Command::new(BIN);
    cmd.args(["connect", "--listen", "127.0.0.1:0"]);
    for p in proxies {
        cmd.args(["--proxy", p]);
    }
    cmd.arg(echo.to_string());
    cmd.env("TUNNEL443_LOG", "debug").env("NO_COLOR", "1");
    let mut fwd = Proc::spawn(cmd, dir.file("fwd.log"), "tunnel443 connect --listen");
    let log = fwd.wait_log("forwarder listening", 20);
    let addr = logged_addr(&log, "forwarder listening");
    for i in 0..n {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        echo_roundtrip(&mut s, format!("round {i}").as_bytes());
    }
    fwd
}

/// A Digest nonce is reused by the next tunnel (nc 2, no 407); when squid
/// calls it stale (`nonce_max_count 1`: squid 5.7 takes it twice), the new
/// nonce is taken without asking for credentials and the tunnel still
/// opens. Squid logs the user on a stale-nonce 407 (the credentials were
/// right) and not on the first challenge.
#[test]
fn connect_digest_nonce_reuse_and_stale_nonce() {
    let reuse = Squid::start_with(Some(SquidAuth::Digest("dana", "d1gest-pw", "")), None);
    let _fwd = forward_n(&[format!("http://dana:d1gest-pw@{}", reuse.addr)], 3);
    wait_until(Duration::from_secs(20), || {
        reuse.access_log().matches("TCP_TUNNEL").count() >= 3
    });
    assert_eq!(
        denied_407(&reuse),
        1,
        "only the first tunnel is challenged:\n{}",
        reuse.access_log()
    );

    let stale = Squid::start_with(
        Some(SquidAuth::Digest(
            "dana",
            "d1gest-pw",
            "auth_param digest nonce_max_count 1",
        )),
        None,
    );
    let _fwd = forward_n(&[format!("http://dana:d1gest-pw@{}", stale.addr)], 5);
    wait_until(Duration::from_secs(20), || {
        stale.access_log().matches("TCP_TUNNEL").count() >= 5
    });
    let log = stale.access_log();
    assert_eq!(log.matches("TCP_TUNNEL").count(), 5, "{log}");
    let stale_407s = log
        .lines()
        .filter(|l| l.contains("/407 ") && l.contains(" dana "))
        .count();
    assert!(stale_407s >= 2, "stale nonces renewed:\n{log}");
}

/// NTLM against squid's `ntlm_fake_auth`: negotiate, challenge and
/// authenticate on one connection.
#[test]
fn connect_through_squid_with_ntlm() {
    let echo = echo_server();
    let squid = Squid::start_with(Some(SquidAuth::NtlmFake), None);
    assert_echo_through(
        &["--proxy", &squid.url(), &echo.to_string()],
        &[
            ("TUNNEL443_PROXY_USER", "CORP\\nina"),
            ("TUNNEL443_PROXY_PASSWORD", "ntlm-pw"),
        ],
    );
    // Squid logs the user our AUTHENTICATE_MESSAGE names (its parser
    // takes the names as 8-bit text if the OEM flag is set beside
    // Unicode: it logged "C\\n" while we echoed both flags).
    let line = squid.wait_access("TCP_TUNNEL", 20);
    assert!(line.contains("nina"), "{line}");
    // Two 407s (the offer, then the challenge), both on one connection.
    assert_eq!(denied_407(&squid), 2, "{}", squid.access_log());
}

/// A chain whose second proxy wants Digest: squid (open) then squid
/// (digest_file_auth), credentials for the second hop in its URL.
#[test]
fn connect_chain_second_proxy_digest() {
    let echo = echo_server();
    let first = Squid::start(None);
    let second = Squid::start_with(Some(SquidAuth::Digest("dana", "d1gest-pw", "")), None);
    assert_echo_through(
        &[
            "--proxy",
            &first.url(),
            "--proxy",
            &format!("http://dana:d1gest-pw@{}", second.addr),
            &echo.to_string(),
        ],
        &[],
    );
    let line = second.wait_access("TCP_TUNNEL", 20);
    assert!(line.contains(" dana "), "{line}");
    first.wait_access(&format!("CONNECT {}", second.addr), 20);
}

/// A chain whose second proxy wants NTLM: its three messages go through
/// the first proxy's tunnel, on one connection to the second.
#[test]
fn connect_chain_second_proxy_ntlm() {
    let echo = echo_server();
    let first = Squid::start(None);
    let second = Squid::start_with(Some(SquidAuth::NtlmFake), None);
    assert_echo_through(
        &[
            "--proxy",
            &first.url(),
            "--proxy",
            &second.url(),
            &echo.to_string(),
        ],
        &[
            ("TUNNEL443_PROXY_USER", "CORP\\nina"),
            ("TUNNEL443_PROXY_PASSWORD", "ntlm-pw"),
        ],
    );
    let line = second.wait_access("TCP_TUNNEL", 20);
    assert!(line.contains("nina"), "{line}");
    assert_eq!(denied_407(&second), 2, "{}", second.access_log());
    // One tunnel through the first proxy carried the whole exchange.
    first.wait_access(&format!("CONNECT {}", second.addr), 20);
    assert_eq!(
        first.access_log().matches("CONNECT").count(),
        1,
        "{}",
        first.access_log()
    );
}
