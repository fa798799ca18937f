//! `tunnel443 user add|del|list`: manage the users file (format in
//! `ppp::users`), found as the server finds it (`--users-file`, else the
//! config file's `users_file`, else `STATE_DIR/users`). Passwords are read
//! from standard input or a terminal prompt, never from the command line,
//! and stored as NT hashes unless `--plain` (which CHAP-MD5 needs) is
//! given. A running server re-reads the file within [`POLL`] of a change.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::server::auth::{read_users_file, write_users_file, POLL};

#[derive(clap::Args, Debug)]
#[command(
    after_help = "The users file is the one the server uses: --users-file, else `users_file` of the config file, else STATE_DIR/users."
)]
pub struct UserArgs {
    #[command(subcommand)]
    pub action: UserAction,
    /// Users file [default: `users_file` of the config, else STATE_DIR/users]
    #[arg(long, global = true, value_name = "FILE")]
    pub users_file: Option<PathBuf>,
    /// State directory whose `users` file is meant [default: `state_dir`
    /// of the config, else /var/lib/tunnel443]
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The server's configuration file, for its `users_file` and
    /// `state_dir` [default: /etc/tunnel443/tunnel443.toml, read when present]
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(clap::Subcommand, Debug)]
pub enum UserAction {
    /// Add a user, or change an existing user's password.
    ///
    /// The password is asked twice on the terminal, or read from standard
    /// input with --password-stdin (for scripts). A running server picks
    /// the change up within 2 seconds.
    Add {
        /// The user name, as the client sends it (e.g. vpn, VPN\alice).
        name: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Store the plaintext password (needed only for CHAP-MD5).
        #[arg(long)]
        plain: bool,
    },
    /// Remove a user (a running server picks the change up within 2 seconds).
    Del {
        /// The user name.
        name: String,
    },
    /// List user names and how each password is stored (plain or nthash).
    List,
}

/// The password for `user add`: the first line of stdin, or asked twice on
/// the terminal. Without a terminal, and without --password-stdin, there is
/// nobody to ask: that is an error that says what to do.
fn read_password(password_stdin: bool) -> anyhow::Result<String> {
    if password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        let pw = line.trim_end_matches(['\r', '\n']).to_string();
        if pw.is_empty() {
            bail!("no password on standard input (--password-stdin reads its first line)");
        }
        return Ok(pw);
    }
    if !std::io::stdin().is_terminal() {
        bail!("standard input is not a terminal, so there is nobody to ask for the password: give it on standard input with --password-stdin");
    }
    let ask = |prompt: &str| {
        rpassword::prompt_password(prompt).context("reading the password from the terminal")
    };
    let a = ask("new password: ")?;
    if a != ask("again: ")? {
        bail!("the passwords differ");
    }
    if a.is_empty() {
        bail!("empty password");
    }
    Ok(a)
}

/// Refuses a NAME argument the users file cannot hold, before any password
/// is asked for.
fn check_name(name: &str) -> anyhow::Result<()> {
    let probe = ppp::Secret::NtHash(ppp::nt_hash(""));
    if ppp::Users::new().insert(name, probe).is_err() {
        bail!("user name \"{name}\" (the NAME argument) cannot be stored: it must not be empty, contain ':' or a line break, or start with '#'");
    }
    Ok(())
}

fn read_existing(path: &Path) -> anyhow::Result<ppp::Users> {
    if !path.exists() {
        bail!(
            "the users file {} does not exist (`tunnel443 user add` creates it; --users-file, --state-dir or --config choose another)",
            path.display()
        );
    }
    read_users_file(path)
}

fn method(secret: &ppp::Secret) -> &'static str {
    match secret {
        ppp::Secret::Password(_) => "plain",
        ppp::Secret::NtHash(_) => "nthash",
    }
}

pub fn run(args: UserArgs) -> anyhow::Result<()> {
    let config = crate::config::config_path(args.config);
    let path = crate::config::users_file(config.as_deref(), args.state_dir, args.users_file)?;
    let applied = format!(
        "a running server using this file applies it within {} s",
        POLL.as_secs()
    );
    match args.action {
        UserAction::Add {
            name,
            password_stdin,
            plain,
        } => {
            check_name(&name)?;
            let mut users = if path.exists() {
                read_users_file(&path)?
            } else {
                ppp::Users::new()
            };
            let pw = read_password(password_stdin)?;
            let secret = if plain {
                ppp::Secret::Password(ppp::Password::new(pw))
            } else {
                ppp::Secret::NtHash(ppp::nt_hash(&pw))
            };
            let kind = method(&secret);
            users.remove(&name);
            users.insert(&name, secret)?;
            write_users_file(&path, &users)?;
            println!(
                "user \"{name}\" saved in {} ({kind}); {applied}",
                path.display()
            );
        }
        UserAction::Del { name } => {
            let mut users = read_existing(&path)?;
            if !users.remove(&name) {
                bail!("no user \"{name}\" in {}", path.display());
            }
            write_users_file(&path, &users)?;
            println!("user \"{name}\" removed from {}; {applied}", path.display());
        }
        UserAction::List => {
            let users = read_existing(&path)?;
            for name in users.names() {
                if let Some(secret) = users.get(name) {
                    println!("{name}\t{}", method(secret));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_file_cannot_hold_are_reported_as_the_argument() {
        check_name("VPN\\alice").unwrap();
        for bad in ["", "a:b", "#x", "a\nb"] {
            let e = format!("{:#}", check_name(bad).unwrap_err());
            assert!(e.contains("(the NAME argument)"), "{e}");
            assert!(!e.contains("line 0"), "{e}");
        }
    }
}
