//! A real FreeRADIUS (Debian's 3.2) for the tests, configured in a
//! temporary directory and run inside a test's network namespace (so its
//! ports 1812/1813 on 127.0.0.1 are the test's own): a copy of
//! `/etc/freeradius/3.0` with logs, accounting and run files in the copy,
//! root as user, one client (127.0.0.1, the given secret,
//! `require_message_authenticator = yes`), the given users at the top of
//! `mods-config/files/authorize`, and — for FreeRADIUS before 3.2.5, which
//! does not sign Access replies on its own — a Message-Authenticator added
//! to every Access-Accept and Access-Reject (the BlastRADIUS mitigation
//! tunnel443 requires).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Netns, Proc};

pub const CONF: &str = "/etc/freeradius/3.0";

pub struct FreeRadius {
    pub raddb: PathBuf,
    dir: PathBuf,
    ns: String,
    proc: Option<Proc>,
    runs: u32,
}

fn rewrite(path: &Path, f: impl FnOnce(String) -> String) {
    let text = std::fs::read_to_string(path).unwrap();
    std::fs::write(path, f(text)).unwrap();
}

fn write_clients(raddb: &Path, secret: &str) {
    std::fs::write(
        raddb.join("clients.conf"),
        format!(
            "client local {{\n\tipaddr = 127.0.0.1\n\tsecret = {secret}\n\trequire_message_authenticator = yes\n}}\n"
        ),
    )
    .unwrap();
}

impl FreeRadius {
    /// Restarts it with another shared secret.
    pub fn change_secret(&mut self, secret: &str) {
        self.kill();
        write_clients(&self.raddb, secret);
        self.resume();
    }

    /// Configures FreeRADIUS in `dir/freeradius` with `users` (lines in
    /// FreeRADIUS's users-file syntax) and starts it in `ns`.
    pub fn start(dir: &Path, ns: &Netns, secret: &str, users: &str) -> Self {
        super::common::require("freeradius");
        let dir = dir.join("freeradius");
        let raddb = dir.join("raddb");
        std::fs::create_dir_all(dir.join("log/radacct")).unwrap();
        std::fs::create_dir_all(dir.join("run")).unwrap();
        let st = Command::new("cp")
            .args(["-a", CONF])
            .arg(&raddb)
            .status()
            .unwrap();
        assert!(st.success(), "copying {CONF}");
        let d = dir.display().to_string();
        rewrite(&raddb.join("radiusd.conf"), |t| {
            t.lines()
                .map(|l| {
                    let k = l.trim_start();
                    if k.starts_with("logdir =") {
                        format!("logdir = {d}/log")
                    } else if k.starts_with("run_dir =") {
                        format!("run_dir = {d}/run")
                    } else if k.starts_with("raddbdir =") {
                        format!("raddbdir = {}", raddb.display())
                    } else if k == "user = freerad" {
                        "\tuser = root".into()
                    } else if k == "group = freerad" {
                        "\tgroup = root".into()
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
        });
        write_clients(&raddb, secret);
        rewrite(&raddb.join("sites-available/default"), |t| {
            let sign = "update reply {\n\t\t&Message-Authenticator := 0x00\n\t}";
            t.replacen("\npost-auth {", &format!("\npost-auth {{\n\t{sign}"), 1)
                .replacen(
                    "Post-Auth-Type REJECT {",
                    &format!("Post-Auth-Type REJECT {{\n\t\t{sign}"),
                    1,
                )
        });
        rewrite(&raddb.join("mods-config/files/authorize"), |t| {
            format!("{users}\n\n{t}")
        });
        let mut f = FreeRadius {
            raddb,
            dir,
            ns: ns.name.clone(),
            proc: None,
            runs: 0,
        };
        f.resume();
        f
    }

    /// Gives the `eap` module's TLS (EAP-TLS, PEAP) the certificate `cert`
    /// and key `key`, trusts client certificates issued by `ca`, and
    /// restarts it.
    pub fn eap_tls(&mut self, cert: &Path, key: &Path, ca: &Path) {
        self.kill();
        rewrite(&self.raddb.join("mods-available/eap"), |t| {
            t.lines()
                .map(|l| {
                    let k = l.trim_start();
                    if k.starts_with("private_key_password =") {
                        "#".into()
                    } else if k.starts_with("private_key_file =") {
                        format!("\t\tprivate_key_file = {}", key.display())
                    } else if k.starts_with("certificate_file =") {
                        format!("\t\tcertificate_file = {}", cert.display())
                    } else if k.starts_with("ca_file =") {
                        format!("\t\tca_file = {}", ca.display())
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
        });
        self.resume();
    }

    /// Starts it (again) and waits until it is ready.
    pub fn resume(&mut self) {
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            &self.ns,
            "freeradius",
            "-f",
            "-l",
            "stdout",
            "-d",
        ])
        .arg(&self.raddb);
        self.runs += 1;
        let mut p = Proc::spawn(
            cmd,
            self.dir.join(format!("radiusd-{}.log", self.runs)),
            "freeradius",
        );
        assert!(
            p.wait_for_output("Ready to process requests", 30),
            "FreeRADIUS did not start:\n{}",
            p.output()
        );
        self.proc = Some(p);
    }

    /// Stops it (SIGKILL: as if it died).
    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.signal(libc::SIGKILL);
            p.stop();
        }
    }

    /// Every accounting record FreeRADIUS wrote (`radacct/<client>/detail-*`).
    pub fn detail(&self) -> String {
        let mut out = String::new();
        let Ok(clients) = std::fs::read_dir(self.dir.join("log/radacct")) else {
            return out;
        };
        for c in clients.flatten() {
            for f in std::fs::read_dir(c.path()).into_iter().flatten().flatten() {
                out.push_str(&std::fs::read_to_string(f.path()).unwrap_or_default());
            }
        }
        out
    }

    /// The detail records (blank-line separated) that contain `needle`.
    pub fn records(&self, needle: &str) -> Vec<String> {
        self.detail()
            .split("\n\n")
            .filter(|r| r.contains(needle))
            .map(str::to_string)
            .collect()
    }

    /// The log of the current (or last) run.
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.dir.join(format!("radiusd-{}.log", self.runs)))
            .unwrap_or_default()
    }
}
