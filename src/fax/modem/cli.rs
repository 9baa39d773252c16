//! `faxgate modem …` subcommands: thin wrappers that open a modem, run, and report as text.

use std::fmt::Write as _;
use std::path::Path;

use super::port::{Modem, ModemError};
use super::profile::{Profile, ProfileError};

/// Why a CLI modem command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The profile file is unusable (the operator's file).
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The modem or its device failed.
    #[error(transparent)]
    Modem(#[from] ModemError),
}

/// `faxgate modem probe DEV`: initialise the modem with `profile` (the generic Class 1
/// profile when `None`) and report what it offers.
pub fn probe(dev: &Path, profile: Option<&Path>) -> Result<String, CliError> {
    let profile = match profile {
        Some(p) => Profile::load(p)?,
        None => Profile::default(),
    };
    let mut m = Modem::open(dev, profile)?;
    m.init()?;
    let info = m.probe()?;
    let mut s = String::new();
    let codes = |v: &[super::Modulation]| {
        v.iter()
            .map(|m| m.code().to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let _ = writeln!(s, "device: {}", dev.display());
    let _ = writeln!(s, "identity: {}", info.identity);
    let _ = writeln!(s, "classes: {}", info.classes.join(","));
    let _ = writeln!(s, "class1: {}", if info.class1() { "yes" } else { "no" });
    let _ = writeln!(s, "v21-hdlc: {}", if info.v21_hdlc { "yes" } else { "no" });
    let _ = writeln!(s, "transmit: {}", codes(&info.transmit));
    let _ = writeln!(s, "receive: {}", codes(&info.receive));
    let _ = writeln!(s, "v17: {}", if info.v17() { "yes" } else { "no" });
    let _ = writeln!(s, "max-rate: {}", info.max_rate());
    Ok(s)
}
