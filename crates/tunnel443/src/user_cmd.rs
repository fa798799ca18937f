//! `tunnel443 user add|del|list`: manage the users file (format in
//! `ppp::users`). Passwords are read from standard input or a prompt, never
//! from the command line, and stored as NT hashes unless `--plain` (which
//! CHAP-MD5 needs) is given.

use std::path::PathBuf;

use anyhow::{bail, Context};

use crate::server::auth::{read_users_file, write_users_file};

#[derive(clap::Args, Debug)]
pub struct UserArgs {
    #[command(subcommand)]
    pub action: UserAction,
    /// Users file (default /var/lib/tunnel443/users).
    #[arg(long, global = true)]
    pub users_file: Option<PathBuf>,
}

#[derive(clap::Subcommand, Debug)]
pub enum UserAction {
    /// Add a user, or change an existing user's password.
    Add {
        name: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Store the plaintext password (needed only for CHAP-MD5).
        #[arg(long)]
        plain: bool,
    },
    /// Remove a user.
    Del { name: String },
    /// List user names and how each is stored.
    List,
}

pub fn run(args: UserArgs) -> anyhow::Result<()> {
    let path = args
        .users_file
        .unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_STATE_DIR).join("users"));
    let mut users = if path.exists() {
        read_users_file(&path)?
    } else {
        ppp::Users::new()
    };
    match args.action {
        UserAction::Add {
            name,
            password_stdin,
            plain,
        } => {
            let pw = if password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .context("reading the password from stdin")?;
                line.trim_end_matches(['\r', '\n']).to_string()
            } else {
                let a = rpassword::prompt_password("new password: ")?;
                if a != rpassword::prompt_password("again: ")? {
                    bail!("the passwords differ");
                }
                a
            };
            if pw.is_empty() {
                bail!("empty password");
            }
            let secret = if plain {
                ppp::Secret::Password(ppp::Password::new(pw))
            } else {
                ppp::Secret::NtHash(ppp::nt_hash(&pw))
            };
            users.remove(&name);
            users.insert(&name, secret)?;
            write_users_file(&path, &users)?;
            println!("user {name:?} saved in {}", path.display());
        }
        UserAction::Del { name } => {
            if !users.remove(&name) {
                bail!("no user {name:?} in {}", path.display());
            }
            write_users_file(&path, &users)?;
            println!("user {name:?} removed from {}", path.display());
        }
        UserAction::List => {
            let text = users.to_file_string();
            for line in text
                .lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
            {
                let mut f = line.splitn(3, ':');
                if let (Some(n), Some(kind)) = (f.next(), f.next()) {
                    println!("{n}\t{kind}");
                }
            }
        }
    }
    Ok(())
}
