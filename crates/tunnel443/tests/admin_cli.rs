//! What an admin meets first, through the built binary: the zero-config
//! banner and the files it writes, `tunnel443 user`, `--check-config`,
//! start-up errors, `tunnel443 demo`'s tool check, help texts and the
//! systemd unit. Tests that need a TUN device run the server in a network
//! namespace (the e2e harness; root).

mod e2e;

use e2e::*;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Runs `tunnel443 ARGS` with `stdin` as standard input (nothing: /dev/null).
fn run(args: &[&str], stdin: Option<&str>) -> Output {
    run_in(Command::new(BIN), args, stdin)
}

fn run_in(mut cmd: Command, args: &[&str], stdin: Option<&str>) -> Output {
    cmd.args(args)
        .env("NO_COLOR", "1")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawning tunnel443");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A server in `lab`'s server namespace with exactly `args` after `server`.
fn server(lab: &Lab, args: &[&str]) -> Proc {
    let mut cmd = lab.server.command(BIN);
    cmd.env("TUNNEL443_LOG", "info").arg("server").args(args);
    Proc::spawn(
        cmd,
        lab.dir.path().join(format!("server-{}.log", tag())),
        "server",
    )
}

/// Waits for "server started"; panics with the output otherwise.
fn started(s: &mut Proc) -> String {
    s.wait_log("server started", 20)
}

/// The `connect with:` command the banner printed, as arguments.
fn connect_command(out: &str) -> Vec<String> {
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("tunnel443: connect with: "))
        .unwrap_or_else(|| panic!("no connect line in:\n{out}"));
    let mut words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
    assert_eq!(words.remove(0), "tunnel443", "{line}");
    words
}

// Issue 15 item 2: `--users-file F` with F missing: the user is created in
// F (what the banner says), not in STATE_DIR/users, and the server starts.
#[test]
fn zero_config_creates_the_named_users_file() {
    let lab = Lab::new(0);
    let state = lab.dir.path().join("state");
    let users = lab.dir.path().join("elsewhere/users");
    let mut s = server(
        &lab,
        &[
            "--listen",
            "0.0.0.0:443",
            "--state-dir",
            p(&state),
            "--users-file",
            p(&users),
        ],
    );
    let out = started(&mut s);
    let created = out
        .lines()
        .find_map(|l| l.strip_prefix("tunnel443: created user vpn with password "))
        .unwrap_or_else(|| panic!("no created-user line:\n{out}"));
    let (password, stored) = created.split_once(' ').unwrap();
    assert_eq!(stored, format!("(stored in {})", users.display()));
    let file = std::fs::read_to_string(&users).unwrap();
    assert_eq!(file.trim(), format!("vpn:plain:{password}"));
    assert!(
        !state.join("users").exists(),
        "a second users file was written"
    );
    assert!(state.join("cert.pem").exists());
}

// Issue 15 item 4: on 0.0.0.0 the banner names the host's non-loopback
// address, and the command it prints connects from another namespace.
#[test]
fn banner_command_names_a_reachable_address_and_works() {
    let lab = Lab::new(1);
    let mut s = lab.start_server(&[]);
    let out = s.wait_log("connect with:", 5);
    let args = connect_command(&out);
    let url = args.iter().find(|a| a.starts_with("sstp://")).unwrap();
    assert_eq!(url, "sstp://vpn@10.251.0.1", "{out}");
    assert!(
        !out.contains("@127.") && !out.contains("@localhost"),
        "{out}"
    );
    // As an admin would: paste the command, add the password.
    let pwf = lab.dir.path().join("pw");
    std::fs::write(&pwf, lab.password()).unwrap();
    let mut cmd = lab.clients[0].command(BIN);
    cmd.args(&args).arg("--password-file").arg(&pwf);
    let _client = Proc::spawn(cmd, lab.dir.path().join("client.log"), "client");
    assert!(
        wait_ping(&lab.clients[0], "10.44.0.1", 30),
        "the printed command did not bring the tunnel up"
    );
}

// Issue 15 item 14: `user add` reaches a running server without SIGHUP,
// and says so; `--state-dir` finds the server's file.
#[test]
fn user_add_takes_effect_in_a_running_server() {
    let lab = Lab::new(1);
    let mut s = lab.start_server(&[]);
    let state = lab.dir.path().join("state");
    let o = run(
        &[
            "user",
            "add",
            "bob",
            "--password-stdin",
            "--state-dir",
            p(&state),
        ],
        Some("bob-secret\n"),
    );
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert_eq!(
        stdout.trim(),
        format!(
            "user \"bob\" saved in {} (nthash); a running server using this file applies it within 2 s",
            state.join("users").display()
        )
    );
    s.wait_log("users file reloaded users=2", 10);
    let pin = ["--pin-sha256".to_string(), lab.fingerprint()];
    let pin: Vec<&str> = pin.iter().map(String::as_str).collect();
    let _client = lab.start_client(0, "bob", "bob-secret", &pin);
    assert!(
        wait_ping(&lab.clients[0], "10.44.0.1", 30),
        "bob could not log in"
    );
}

// Issue 15 item 14: a server with an empty users file prints a hint to add
// a user instead of a command nobody can use.
#[test]
fn empty_users_file_gives_a_hint_not_a_command() {
    let lab = Lab::new(0);
    let state = lab.dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("users"), "# nobody yet\n").unwrap();
    common::set_mode(&state.join("users"), 0o600);
    let mut s = server(&lab, &["--state-dir", p(&state)]);
    let out = started(&mut s);
    assert!(!out.contains("sstp://"), "{out}");
    assert!(
        out.contains(&format!(
            "the users file {} has no users: add one with `tunnel443 user add NAME --users-file {}`",
            state.join("users").display(),
            state.join("users").display()
        )),
        "{out}"
    );
}

// Issue 15 item 15: a second server in the same namespace is told that the
// TUN name or the port is taken (not that it needs root), before it prints
// anything for clients or creates a user whose password nobody saw.
#[test]
fn second_server_names_the_busy_device_and_port() {
    let lab = Lab::new(0);
    let state = lab.dir.path().join("state");
    let mut first = server(&lab, &["--state-dir", p(&state)]);
    started(&mut first);
    let fails = |args: &[&str], needle: &str| {
        let mut s = server(&lab, args);
        let st = s.wait_exit(20).expect("the second server kept running");
        let out = s.output();
        assert!(!st.success(), "{out}");
        assert!(out.contains(needle), "wanted {needle:?} in:\n{out}");
        assert!(!out.contains("root"), "{out}");
        assert!(!out.contains("connect with"), "{out}");
        out
    };
    let fresh = lab.dir.path().join("fresh");
    let out = fails(
        &["--state-dir", p(&fresh), "--listen", "0.0.0.0:4443"],
        "creating TUN device t443s0: t443s0 is in use by another process",
    );
    assert!(
        out.contains("--tun-name") && out.contains("tun.name"),
        "{out}"
    );
    fails(
        &["--state-dir", p(&fresh), "--tun-name", "t443other"],
        "listening on 0.0.0.0:443: the address is already in use",
    );
    assert!(
        !fresh.join("users").exists(),
        "a server that did not start created a user"
    );
}

// Issue 15 item 14: `tunnel443 user` without a terminal, with a bad name,
// on a missing file, and finding the file through --config.
#[test]
fn user_command_errors_are_plain() {
    let dir = TempDir::new("usercli");
    let users = dir.file("users");
    let o = run(&["user", "list", "--users-file", p(&users)], None);
    let (_, e) = text(&o);
    assert!(!o.status.success());
    assert!(
        e.contains(&format!(
            "the users file {} does not exist",
            users.display()
        )),
        "{e}"
    );
    let o = run(&["user", "del", "x", "--users-file", p(&users)], None);
    assert!(!o.status.success());
    let o = run(&["user", "add", "bob", "--users-file", p(&users)], None);
    let (_, e) = text(&o);
    assert!(!o.status.success());
    assert!(e.contains("standard input is not a terminal"), "{e}");
    assert!(e.contains("--password-stdin"), "{e}");
    assert!(!e.contains("os error"), "{e}");
    let o = run(
        &[
            "user",
            "add",
            "a:b",
            "--password-stdin",
            "--users-file",
            p(&users),
        ],
        Some("pw\n"),
    );
    let (_, e) = text(&o);
    assert!(!o.status.success());
    assert!(e.contains("user name \"a:b\" (the NAME argument)"), "{e}");
    assert!(!e.contains("line 0"), "{e}");
    assert!(!users.exists());
    // A config file's users_file is the one `user` manages.
    let cfg = dir.file("t.toml");
    std::fs::write(&cfg, format!("users_file = \"{}\"\n", users.display())).unwrap();
    let o = run(
        &[
            "user",
            "add",
            "VPN\\test",
            "--password-stdin",
            "--plain",
            "--config",
            p(&cfg),
        ],
        Some("pw\n"),
    );
    let (out, e) = text(&o);
    assert!(o.status.success(), "{e}");
    assert!(out.starts_with("user \"VPN\\test\" saved in"), "{out}");
    let o = run(&["user", "list", "-c", p(&cfg)], None);
    assert_eq!(text(&o).0, "VPN\\test\tplain\n");
}

// Issue 15 item 17: --check-config fails, naming the field, where start
// would fail or silently do something else.
#[test]
fn check_config_names_the_field() {
    let dir = TempDir::new("checkcfg");
    let check = |toml: &str, extra: &[&str]| {
        let cfg = dir.file(&format!("c-{}.toml", tag()));
        std::fs::write(&cfg, toml).unwrap();
        let mut args = vec!["server", "--check-config", "--config", p(&cfg)];
        args.extend_from_slice(extra);
        let o = run(&args, None);
        let (out, err) = text(&o);
        (o.status.success(), out + &err)
    };
    let state = format!("state_dir = \"{}\"\n", dir.path().display());
    let absent = dir.file("absent");
    let (ok, out) = check(
        &format!(
            "users_file = \"{}\"\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
            absent.display(),
            absent.display(),
            absent.display()
        ),
        &[],
    );
    assert!(
        !ok && out.contains(&format!("tls.cert: {}", absent.display())),
        "{out}"
    );
    let pem = dir.file("present.pem");
    std::fs::write(&pem, "not read: the users file is checked first").unwrap();
    let (ok, out) = check(
        &format!(
            "users_file = \"{}\"\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
            absent.display(),
            pem.display(),
            pem.display()
        ),
        &[],
    );
    assert!(
        !ok && out.contains(&format!("users_file: {}", absent.display())),
        "{out}"
    );
    // A key (or users file) that group or others may read is refused.
    let users = dir.file("users-private");
    std::fs::write(&users, "").unwrap();
    common::set_mode(&users, 0o600);
    common::set_mode(&pem, 0o644);
    let (ok, out) = check(
        &format!(
            "users_file = \"{}\"\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
            users.display(),
            pem.display(),
            pem.display()
        ),
        &[],
    );
    let want = format!(
        "tls.key: {p} is accessible to group or others (mode 644); restrict it with `chmod 600 {p}`",
        p = pem.display()
    );
    assert!(!ok && out.contains(&want), "{out}");
    let (ok, out) = check(&state, &["--iphttps-client-ca", p(&pem)]);
    assert!(
        !ok && out.contains("iphttps.prefix (--iphttps-prefix): required"),
        "{out}"
    );
    let (ok, out) = check(&format!("{state}[ipv4]\npool = \"10.66.0.203/29\"\n"), &[]);
    assert!(
        !ok && out.contains(
            "ipv4.pool: 10.66.0.203/29 has host bits set: the network address is 10.66.0.200/29"
        ),
        "{out}"
    );
    // Zero-config: a missing users file will be created; check-config says so.
    let (ok, out) = check(&state, &[]);
    assert!(ok, "{out}");
    assert!(
        out.contains("does not exist yet: the server creates it"),
        "{out}"
    );
}

// Issue 15 item 18: the demo names a missing tool and its package up front.
#[test]
fn demo_names_missing_tools() {
    let dir = TempDir::new("demopath");
    let ip = common::require("ip");
    std::os::unix::fs::symlink(ip, dir.file("ip")).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.env("PATH", dir.path());
    let o = run_in(cmd, &["demo"], None);
    let (_, e) = text(&o);
    assert!(!o.status.success());
    assert!(
        e.contains("the demo needs ping (Debian package iputils-ping), not found on PATH; install with: apt-get install iputils-ping"),
        "{e}"
    );
}

// Issue 15 item 19: help texts and the systemd unit.
#[test]
fn help_and_unit_file() {
    let (h, _) = text(&run(&["--help"], None));
    assert!(
        h.contains("server   The VPN server: SSTP and IP-HTTPS"),
        "{h}"
    );
    let (h, _) = text(&run(&["server", "--help"], None));
    assert!(
        h.contains("[default: /etc/tunnel443/tunnel443.toml, read when present]"),
        "{h}"
    );
    assert!(h.contains("[default: 0.0.0.0:443]"), "{h}");
    assert!(!h.contains("(default "), "defaults written one way:\n{h}");
    let (h, _) = text(&run(&["user", "add", "--help"], None));
    assert!(h.contains("The user name"), "{h}");
    assert!(h.contains("--password-stdin"), "{h}");

    let unit = include_str!("../../../dist/tunnel443.service");
    assert!(!unit.contains("example.invalid"), "{unit}");
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    let mut words = exec.split_whitespace();
    assert!(words.next().unwrap().ends_with("/tunnel443"));
    let args: Vec<&str> = words.collect();
    assert_eq!(args, ["server"], "the unit must work without a config file");
}
