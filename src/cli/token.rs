//! `faxgate token create USER`: a REST API token for a console user.
//!
//! The token (`fgt_` and 64 hex digits, 256 random bits) is printed once on standard output;
//! only its SHA-256 goes into `[http] tokens_file` (default `api-tokens` in the data
//! directory), through [`Tokens::create`]. A running daemon sees the new line the next time a
//! request presents a token (it re-reads the file when it changed). With `[http] users_file`
//! set, USER must be one of its users: the token acts with that user's role and scope, and a
//! token for nobody would be refused at every request anyway.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use thiserror::Error;

use crate::app::console::auth::{AccessError, ConsoleUsers, Tokens};
use crate::config::Config;
use crate::smtp::auth::MAX_USER;

/// `faxgate token …`.
#[derive(Subcommand, Debug, Clone)]
pub enum TokenCommand {
    /// Make a new API token for USER and print it (once; only its hash is kept).
    Create {
        /// The console user the token acts as.
        user: String,
    },
}

/// Why no token was made.
#[derive(Debug, Error)]
pub enum TokenError {
    /// Not a possible user name.
    #[error("bad user name `{0}` (1 to 255 octets, no `:` or white space)")]
    BadUser(String),
    /// Not in the console users file.
    #[error("`{user}` is not a user in {file} (http.users_file)")]
    UnknownUser {
        /// The name given.
        user: String,
        /// The users file.
        file: String,
    },
    /// The users or tokens file could not be read or written.
    #[error(transparent)]
    Access(#[from] AccessError),
}

/// Creates a token for `user` under `cfg`; returns the token and the file its hash went to.
pub fn create(cfg: &Config, user: &str) -> Result<(String, std::path::PathBuf), TokenError> {
    if user.is_empty()
        || user.len() > MAX_USER
        || user.contains(':')
        || user.chars().any(char::is_whitespace)
    {
        return Err(TokenError::BadUser(user.chars().take(80).collect()));
    }
    if let Some(file) = &cfg.http.users_file {
        let users = ConsoleUsers::load(file)?;
        if users.get(user).is_none() {
            return Err(TokenError::UnknownUser {
                user: user.to_owned(),
                file: file.display().to_string(),
            });
        }
    }
    let path = cfg.http.tokens_path(&cfg.gateway.data_dir);
    let token = Tokens::create(&path, user)?;
    Ok((token, path))
}

/// The verb: the token on stdout, where it went on stderr.
pub fn main(config: Option<&Path>, cmd: &TokenCommand) -> ExitCode {
    let cfg = match super::load(config) {
        Ok(l) => l.config,
        Err(errs) => {
            eprintln!(
                "faxgate: configuration has {} error(s):\n{errs}",
                errs.0.len()
            );
            return ExitCode::FAILURE;
        }
    };
    let TokenCommand::Create { user } = cmd;
    match create(&cfg, user) {
        Ok((token, path)) => {
            println!("{token}");
            eprintln!(
                "faxgate: API token for `{user}` (shown once; its hash is kept in {})",
                path.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("faxgate: {}", super::chain(&e));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_needs_a_known_user_when_users_exist() {
        let d = tempfile::tempdir().unwrap();
        let mut cfg = Config::default();
        cfg.gateway.data_dir = d.path().to_path_buf();
        // Open mode: any well-formed name.
        let (t, path) = create(&cfg, "script").unwrap();
        assert!(t.starts_with("fgt_") && t.len() == 68, "{t}");
        assert_eq!(path, d.path().join("api-tokens"));
        assert_eq!(Tokens::load(&path).unwrap().user_of(&t), Some("script"));
        for bad in ["", "a:b", "a b", &"x".repeat(MAX_USER + 1)] {
            assert!(
                matches!(create(&cfg, bad), Err(TokenError::BadUser(_))),
                "{bad}"
            );
        }
        let users = d.path().join("users");
        let h = crate::smtp::auth::hash_password("pw").unwrap();
        std::fs::write(&users, format!("ann:{h}:admin\n")).unwrap();
        cfg.http.users_file = Some(users);
        assert!(create(&cfg, "ann").is_ok());
        let e = create(&cfg, "bob").unwrap_err();
        assert!(matches!(e, TokenError::UnknownUser { .. }), "{e}");
        assert!(e.to_string().contains("`bob` is not a user"), "{e}");
    }
}
