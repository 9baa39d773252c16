//! `faxgate hash-password USER`: a `smtp.users_file` line for USER.

use std::process::ExitCode;

use crate::smtp::auth::{MAX_USER, hash_password};

/// Reads the password from the first line of standard input (so it never appears in `ps` or
/// shell history) and returns the users-file line `USER:<argon2 hash>`.
pub fn line_for(user: &str) -> Result<String, String> {
    if user.is_empty() || user.len() > MAX_USER || user.contains([':', ' ', '\t', '\n']) {
        return Err("bad user name (no `:` or spaces)".into());
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
    let pw = line.trim_end_matches(['\r', '\n']);
    if pw.is_empty() {
        return Err("empty password".into());
    }
    Ok(format!("{user}:{}", hash_password(pw)?))
}

/// The verb: prints the line, or the error on stderr.
pub fn main(user: &str) -> ExitCode {
    match line_for(user) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("faxgate: {e}");
            ExitCode::FAILURE
        }
    }
}
