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
//!
//! [`Options`] adds more RADIUS clients (the servers of a fleet in other
//! namespaces) and SQL accounting in sqlite (`rlm_sql_sqlite`, the schema
//! from `mods-config/sql/main/sqlite/schema.sql` bootstrapped on start) with
//! `sql` in the `session` section, so that `Simultaneous-Use` is checked
//! against the open rows of `radacct` (docs/fleet.md).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Netns, Proc};

pub const CONF: &str = "/etc/freeradius/3.0";

/// What [`FreeRadius::start_with`] adds to the default configuration.
#[derive(Default)]
pub struct Options {
    /// More clients (addresses or networks such as `10.252.0.0/16`), with the same secret.
    pub clients: Vec<String>,
    /// SQL accounting and session checks in sqlite (`FreeRadius::sql`).
    pub sql: bool,
}

pub struct FreeRadius {
    pub raddb: PathBuf,
    dir: PathBuf,
    clients: Vec<String>,
    ns: String,
    proc: Option<Proc>,
    runs: u32,
}

fn rewrite(path: &Path, f: impl FnOnce(String) -> String) {
    let text = std::fs::read_to_string(path).unwrap();
    std::fs::write(path, f(text)).unwrap();
}

/// `text` with the first `from` replaced by `to`; `from` must be there.
fn replace_once(text: String, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "{from:?} not in the FreeRADIUS configuration"
    );
    text.replacen(from, to, 1)
}

fn write_clients(raddb: &Path, secret: &str, more: &[String]) {
    let mut text = String::new();
    for (i, addr) in std::iter::once("127.0.0.1")
        .chain(more.iter().map(String::as_str))
        .enumerate()
    {
        text.push_str(&format!(
            "client c{i} {{\n\tipaddr = {addr}\n\tsecret = {secret}\n\trequire_message_authenticator = yes\n}}\n"
        ));
    }
    std::fs::write(raddb.join("clients.conf"), text).unwrap();
}

/// SQL accounting in sqlite at `db`: the `sql` module with the sqlite
/// driver, and `sql` in the `session` section (it is already in
/// `accounting`, `authorize` and `post-auth` as `-sql`, used once enabled).
fn enable_sql(raddb: &Path, db: &Path) {
    rewrite(&raddb.join("mods-available/sql"), |t| {
        let t = replace_once(
            t,
            "driver = \"rlm_sql_null\"",
            "driver = \"rlm_sql_sqlite\"",
        );
        let t = replace_once(
            t,
            "filename = \"/tmp/freeradius.db\"",
            &format!("filename = \"{}\"", db.display()),
        );
        // The test's reads must not make an accounting write fail.
        replace_once(t, "busy_timeout = 200", "busy_timeout = 5000")
    });
    // 3.2.1's simul_verify_query selects `username = '%{SQL-Group}'`, finds
    // no row and so lets every second login in: select by the user name.
    rewrite(
        &raddb.join("mods-config/sql/main/sqlite/queries.conf"),
        |t| {
            replace_once(
                t,
                "WHERE username = '%{${group_attribute}}' \\\n\tAND acctstoptime IS NULL",
                "WHERE username = '%{SQL-User-Name}' \\\n\tAND acctstoptime IS NULL",
            )
        },
    );
    std::os::unix::fs::symlink("../mods-available/sql", raddb.join("mods-enabled/sql")).unwrap();
    rewrite(&raddb.join("sites-available/default"), |t| {
        replace_once(t, "session {\n#\tradutmp", "session {\n\tsql")
    });
}

impl FreeRadius {
    /// Restarts it with another shared secret.
    pub fn change_secret(&mut self, secret: &str) {
        self.kill();
        write_clients(&self.raddb, secret, &self.clients);
        self.resume();
    }

    /// Configures FreeRADIUS in `dir/freeradius` with `users` (lines in
    /// FreeRADIUS's users-file syntax) and starts it in `ns`.
    pub fn start(dir: &Path, ns: &Netns, secret: &str, users: &str) -> Self {
        Self::start_with(dir, ns, secret, users, Options::default())
    }

    /// [`FreeRadius::start`] with more clients and/or SQL accounting.
    pub fn start_with(dir: &Path, ns: &Netns, secret: &str, users: &str, opts: Options) -> Self {
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
                    } else if k == "auth = no" {
                        // "Login OK" / "Login incorrect (reason)" in the log.
                        "\tauth = yes".into()
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
        });
        write_clients(&raddb, secret, &opts.clients);
        if opts.sql {
            super::common::require("sqlite3");
            enable_sql(&raddb, &dir.join("radius.db"));
        }
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
            clients: opts.clients,
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

    /// Lets the `eap` module's TLS go up to TLS `version` (Debian's
    /// default is "1.2"; FreeRADIUS 3.2 does "1.3" for EAP-TLS only, not
    /// PEAP), and restarts it.
    pub fn tls_max_version(&mut self, version: &str) {
        self.kill();
        rewrite(&self.raddb.join("mods-available/eap"), |t| {
            replace_once(
                t,
                "\t\ttls_max_version = \"1.2\"",
                &format!("\t\ttls_max_version = \"{version}\""),
            )
        });
        self.resume();
    }

    /// Makes `t` (e.g. `mschapv2`) the EAP method the `eap` module starts
    /// with (Debian's default is `md5`, which pppd answers), and restarts it.
    pub fn default_eap_type(&mut self, t: &str) {
        self.kill();
        rewrite(&self.raddb.join("mods-available/eap"), |text| {
            replace_once(
                text,
                "	default_eap_type = md5",
                &format!("	default_eap_type = {t}"),
            )
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
        self.detail_files().concat()
    }

    /// The complete detail records (each ends with a blank line) that
    /// contain `needle`. A record FreeRADIUS is still writing has no blank
    /// line after it yet and is left out, so that a test polling the file
    /// never sees half a record. Each file is split on its own (records
    /// never span files).
    pub fn records(&self, needle: &str) -> Vec<String> {
        complete_records(&self.detail_files())
            .into_iter()
            .filter(|r| r.contains(needle))
            .collect()
    }

    fn detail_files(&self) -> Vec<String> {
        let mut out = Vec::new();
        let Ok(clients) = std::fs::read_dir(self.dir.join("log/radacct")) else {
            return out;
        };
        for c in clients.flatten() {
            for f in std::fs::read_dir(c.path()).into_iter().flatten().flatten() {
                out.push(std::fs::read_to_string(f.path()).unwrap_or_default());
            }
        }
        out
    }

    /// `query` on the SQL accounting database (`sqlite3 -separator |`): one
    /// line per row.
    pub fn sql(&self, query: &str) -> String {
        let out = Command::new("sqlite3")
            // Wait for FreeRADIUS's writes rather than fail on its lock.
            .args(["-readonly", "-cmd", ".timeout 5000", "-separator", "|"])
            .arg(self.dir.join("radius.db"))
            .arg(query)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sqlite3 {query}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The log of the current (or last) run.
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.dir.join(format!("radiusd-{}.log", self.runs)))
            .unwrap_or_default()
    }
}

/// The records of detail files that are complete: those followed by the
/// blank line FreeRADIUS writes after each.
fn complete_records(files: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for text in files {
        let Some(end) = text.rfind("\n\n") else {
            continue;
        };
        out.extend(
            text[..end]
                .split("\n\n")
                .filter(|r| !r.trim().is_empty())
                .map(str::to_string),
        );
    }
    out
}

#[test]
fn a_record_still_being_written_is_left_out() {
    let a = "Mon\n\tAcct-Status-Type = Start\n\n".to_string();
    let b =
        "Mon\n\tAcct-Status-Type = Interim-Update\n\nMon\n\tAcct-Status-Type = Stop\n".to_string();
    let r = complete_records(&[a, b]);
    assert_eq!(r.len(), 2, "{r:?}");
    assert!(r[0].contains("Start") && r[1].contains("Interim-Update"));
    assert!(complete_records(&["Mon\n\tAcct-Status-Type = Stop".into()]).is_empty());
}
