//! Modem profiles: what differs between modem families (init/reset strings, flow control,
//! timing quirks), read from `firmware-config/modems/*.toml`.
//!
//! A profile may name a `base` profile in the same directory; its keys are taken first and the
//! profile's own keys override them (one level of keys, not deep-merged). Loading is the only
//! I/O here; [`Profile::from_toml_chain`] is the pure part.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How the modem paces the host while it sends page data (T.31 §8.3, +FTM: "the configured
/// flow control method will be used by the DCE as necessary to pause the DTE").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowControl {
    /// RTS/CTS wires (set on the port; the kernel pauses our writes).
    Hardware,
    /// XON/XOFF in band (DC1/DC3 from the modem). Our page data may contain 0x11/0x13, which is
    /// fine: only the *modem's* stream is scanned for them, and while we transmit the modem
    /// sends nothing else.
    Software,
    /// None: the device paces itself (a pty; the kernel buffer blocks our writes).
    None,
}

/// Fax service class a modem is driven in (`"1"`, `"1.0"`, `"2.0"`), as a profile or a
/// `[[modem]]` entry names it (`config::ModemClass` is this type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModemClass {
    /// Class 1 (T.31): the host runs T.30; selected with `AT+FCLASS=1`.
    #[serde(rename = "1")]
    Class1,
    /// Class 1.0 (T.31 2nd edition), selected with `AT+FCLASS=1.0`.
    #[serde(rename = "1.0")]
    Class1_0,
    /// Class 2.0 (T.32): the modem runs T.30 (`fax::modem::class2`), selected with
    /// `AT+FCLASS=2.0`.
    #[serde(rename = "2.0")]
    Class2_0,
}

impl ModemClass {
    /// The value `AT+FCLASS=` takes and `AT+FCLASS=?` lists for this class.
    pub fn name(self) -> &'static str {
        match self {
            ModemClass::Class1 => "1",
            ModemClass::Class1_0 => "1.0",
            ModemClass::Class2_0 => "2.0",
        }
    }
}

/// One modem family's profile.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Profile this one builds on (file name without `.toml`, same directory).
    #[serde(default)]
    pub base: Option<String>,
    /// Human-readable name.
    #[serde(default)]
    pub description: String,
    /// Fax class to drive the modem in.
    #[serde(default = "default_class")]
    pub class: ModemClass,
    /// Commands sent in order after opening the port and after every call; each must answer OK.
    #[serde(default = "default_init")]
    pub init: Vec<String>,
    /// Commands that put the modem back to a known state (closing, after a wedged call).
    #[serde(default = "default_reset")]
    pub reset: Vec<String>,
    /// Command enabling caller ID / DID reports (`NMBR=`, `NDID=`); `ERROR` to it is tolerated.
    #[serde(default)]
    pub caller_id: Option<String>,
    /// Flow control between host and modem.
    #[serde(default = "default_flow")]
    pub flow_control: FlowControl,
    /// DTE rate in bit/s (RS-232 modems; USB CDC ACM and ptys ignore it).
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// Dial command prefix (`ATDT` tone, `ATDP` pulse).
    #[serde(default = "default_dial")]
    pub dial: String,
    /// Silence to wait for before answering a received frame (`AT+FRS`, 10 ms units):
    /// T.30 §5.3.2.1 wants 75 ± 20 ms between frames in opposite directions.
    #[serde(default = "default_turnaround")]
    pub frame_turnaround_ms: u32,
    /// Pause after `CONNECT` on answering before the first frame.
    #[serde(default)]
    pub answer_delay_ms: u32,
    /// Seconds to wait for the final result after `ATD` (T.30 §5.2: T0 = 60 ± 5 s for the
    /// called station to answer; the modem's own S7 usually ends the wait sooner).
    #[serde(default = "default_dial_timeout")]
    pub dial_timeout_s: u32,
    /// Quirk (ours): the modem passes the two FCS octets after each received HDLC frame, as
    /// T.31 requires (`+FRH`: "continuing through the last FCS byte"). A few old modems do not;
    /// set `false` for them.
    #[serde(default = "default_true")]
    pub hdlc_fcs_octets: bool,
    /// Quirk (Class 2.0, ours): after `CONNECT` to `+FDT` hold page data until the modem sends
    /// XON (DC1), as Class 2 (EIA-592) modems ask; T.32 modems take data at once.
    #[serde(default)]
    pub class2_wait_xon: bool,
}

fn default_class() -> ModemClass {
    ModemClass::Class1
}
fn default_init() -> Vec<String> {
    vec!["ATZ".into(), "ATE0V1Q0".into(), "ATS0=0".into()]
}
fn default_reset() -> Vec<String> {
    vec!["ATZ".into()]
}
fn default_flow() -> FlowControl {
    FlowControl::Hardware
}
fn default_baud() -> u32 {
    115_200
}
fn default_dial() -> String {
    "ATDT".into()
}
fn default_turnaround() -> u32 {
    70
}
fn default_dial_timeout() -> u32 {
    60
}
fn default_true() -> bool {
    true
}

impl Default for Profile {
    fn default() -> Self {
        Profile::from_toml_chain(&[]).expect("empty profile chain always parses")
    }
}

/// Why a profile could not be loaded. The fault is the profile file's (or its path's).
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The file could not be read.
    #[error("modem profile {path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is malformed or has a wrong or unknown key.
    #[error("modem profile {name}: {message}")]
    Invalid {
        /// Profile name or path.
        name: String,
        /// What is wrong (key and expected type).
        message: String,
    },
    /// `base` chains longer than [`MAX_BASE_DEPTH`] (or looping).
    #[error("modem profile {0}: `base` chain too deep or circular")]
    BaseLoop(String),
    /// A `base` or profile name that is not a plain file name.
    #[error("modem profile name {0:?} is not a plain name")]
    BadName(String),
}

/// Longest `base` chain followed (ours): the shipped profiles use one level.
pub const MAX_BASE_DEPTH: usize = 8;

/// Largest profile file read (ours; the shipped ones are under 2 KB).
pub const MAX_PROFILE_BYTES: u64 = 64 * 1024;

impl Profile {
    /// Merge a chain of TOML documents, most basic first, into one profile (pure).
    pub fn from_toml_chain(docs: &[(&str, &str)]) -> Result<Profile, ProfileError> {
        let mut merged = toml::Table::new();
        for (name, text) in docs {
            let t: toml::Table = toml::from_str(text).map_err(|e| ProfileError::Invalid {
                name: (*name).to_owned(),
                message: e.message().to_owned(),
            })?;
            for (k, v) in t {
                merged.insert(k, v);
            }
        }
        let name = docs.last().map(|d| d.0).unwrap_or("(default)");
        Profile::deserialize(toml::Value::Table(merged)).map_err(|e| ProfileError::Invalid {
            name: name.to_owned(),
            message: e.to_string(),
        })
    }

    /// Load `path`, following `base` names in the same directory.
    pub fn load(path: &Path) -> Result<Profile, ProfileError> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut texts: Vec<(String, String)> = Vec::new();
        let mut next = Some(path.to_path_buf());
        while let Some(p) = next.take() {
            if texts.len() >= MAX_BASE_DEPTH {
                return Err(ProfileError::BaseLoop(path.display().to_string()));
            }
            let text = read_limited(&p)?;
            let t: toml::Table = toml::from_str(&text).map_err(|e| ProfileError::Invalid {
                name: p.display().to_string(),
                message: e.message().to_owned(),
            })?;
            if let Some(base) = t.get("base") {
                let base = base.as_str().ok_or_else(|| ProfileError::Invalid {
                    name: p.display().to_string(),
                    message: "`base` must be a string".into(),
                })?;
                next = Some(dir.join(format!("{}.toml", plain_name(base)?)));
            }
            texts.push((p.display().to_string(), text));
        }
        texts.reverse();
        let refs: Vec<(&str, &str)> = texts
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let mut p = Profile::from_toml_chain(&refs)?;
        p.base = None;
        Ok(p)
    }

    /// Load profile `name` from `dir` (`dir/name.toml`).
    pub fn load_named(dir: &Path, name: &str) -> Result<Profile, ProfileError> {
        Profile::load(&dir.join(format!("{}.toml", plain_name(name)?)))
    }

    /// `AT+FCLASS=…` for the profile's class.
    pub fn fclass_command(&self) -> &'static str {
        match self.class {
            ModemClass::Class1 => "AT+FCLASS=1",
            ModemClass::Class1_0 => "AT+FCLASS=1.0",
            ModemClass::Class2_0 => "AT+FCLASS=2.0",
        }
    }

    /// The dial timeout as a duration.
    pub fn dial_timeout(&self) -> Duration {
        Duration::from_secs(u64::from(self.dial_timeout_s))
    }
}

fn plain_name(name: &str) -> Result<&str, ProfileError> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        || name.starts_with('.')
    {
        return Err(ProfileError::BadName(name.to_owned()));
    }
    Ok(name)
}

fn read_limited(p: &Path) -> Result<String, ProfileError> {
    use crate::read_limit::{self, ReadError};
    read_limit::read_to_string(p, MAX_PROFILE_BYTES).map_err(|e| match e {
        ReadError::TooLarge { .. } => ProfileError::Invalid {
            name: p.display().to_string(),
            message: format!("larger than {MAX_PROFILE_BYTES} bytes"),
        },
        ReadError::Io { source, .. } => ProfileError::Read {
            path: p.to_path_buf(),
            source,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_overrides_keys() {
        let base = "init = [\"ATZ\"]\nflow_control = \"hardware\"\nframe_turnaround_ms = 70\n";
        let child = "base = \"b\"\nflow_control = \"none\"\n";
        let p = Profile::from_toml_chain(&[("b", base), ("c", child)]).unwrap();
        assert_eq!(p.flow_control, FlowControl::None);
        assert_eq!(p.init, vec!["ATZ".to_string()]);
        assert_eq!(p.frame_turnaround_ms, 70);
        assert!(p.hdlc_fcs_octets);
    }

    #[test]
    fn shipped_profiles_load_and_class2_ones_say_so() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("firmware-config/modems");
        let mut class2 = Vec::new();
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            let p = Profile::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            if p.class == ModemClass::Class2_0 {
                // The driver sends +FCLASS and the T.32 set-up itself, after `init`: a +F
                // command in `init` would reach the modem before it is in Class 2.0.
                assert!(
                    p.init
                        .iter()
                        .all(|c| !c.to_ascii_uppercase().contains("+F")),
                    "{}",
                    path.display()
                );
                class2.push(path);
            }
        }
        assert!(class2.len() >= 3, "{class2:?}");
    }

    #[test]
    fn unknown_key_is_named() {
        let e = Profile::from_toml_chain(&[("x", "flow_contrl = \"none\"")]).unwrap_err();
        assert!(e.to_string().contains("flow_contrl"), "{e}");
    }

    #[test]
    fn base_loop_and_bad_names() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a.toml"), "base = \"b\"").unwrap();
        std::fs::write(d.path().join("b.toml"), "base = \"a\"").unwrap();
        assert!(matches!(
            Profile::load(&d.path().join("a.toml")),
            Err(ProfileError::BaseLoop(_))
        ));
        std::fs::write(d.path().join("c.toml"), "base = \"../etc/passwd\"").unwrap();
        assert!(matches!(
            Profile::load(&d.path().join("c.toml")),
            Err(ProfileError::BadName(_))
        ));
    }
}
