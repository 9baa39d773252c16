//! Delivery into a Maildir: the zero-config destination of every email the gateway writes.
//!
//! Maildir protocol (D. J. Bernstein, "Using maildir format"; Courier and Dovecot follow it):
//! write the message under `tmp/` with a name unique to this host, fsync it, rename it into
//! `new/`, fsync `new/`. Readers only look at `new/` and `cur/`, so a message appears whole or
//! not at all; after the rename and the directory fsync it survives a power cut.
//!
//! Unique names (ours, in the Dovecot style): `<secs>.M<micros>P<pid>Q<seq>R<random>.<host>,S=<size>`,
//! where the host has `/` and `:` replaced as the Maildir convention asks.
//!
//! Like a local MDA the message gets `Return-Path:` (the envelope sender) and one
//! `Delivered-To:` per envelope recipient prepended.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Accepted, DeliveryError, MailEnvelope};

/// A Maildir on local disk.
#[derive(Debug, Clone)]
pub struct Maildir {
    root: PathBuf,
    host: String,
    seq: Arc<AtomicU64>,
}

impl Maildir {
    /// The Maildir at `root` (created with `tmp/`, `new/`, `cur/` on first delivery), named
    /// with `hostname` in its file names.
    pub fn new(root: PathBuf, hostname: &str) -> Maildir {
        let host: String = hostname
            .chars()
            .map(|c| match c {
                '/' => '\\',
                ':' => '-',
                c if c.is_control() => '_',
                c => c,
            })
            .collect();
        Maildir {
            root,
            host,
            seq: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The Maildir's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Delivers one message (blocking work runs on tokio's blocking pool).
    pub async fn deliver(
        &self,
        envelope: &MailEnvelope,
        message: &[u8],
    ) -> Result<Accepted, DeliveryError> {
        let this = self.clone();
        let mut bytes = header_lines(envelope);
        bytes.extend_from_slice(message);
        tokio::task::spawn_blocking(move || this.deliver_blocking(&bytes))
            .await
            .map_err(|e| DeliveryError::Local(format!("delivery task failed: {e}")))?
    }

    /// Writes `bytes` (already with the MDA headers) and returns the file in `new/`.
    fn deliver_blocking(&self, bytes: &[u8]) -> Result<Accepted, DeliveryError> {
        let local = |what: &str, p: &Path, e: std::io::Error| {
            DeliveryError::Local(format!("{what} {}: {e}", p.display()))
        };
        for sub in ["tmp", "new", "cur"] {
            let d = self.root.join(sub);
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&d)
                .map_err(|e| local("cannot create", &d, e))?;
        }
        let name = self.unique_name(bytes.len());
        let tmp = self.root.join("tmp").join(&name);
        let new = self.root.join("new").join(&name);
        let written = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(local("cannot write", &tmp, e));
        }
        if let Err(e) = fs::rename(&tmp, &new) {
            let _ = fs::remove_file(&tmp);
            return Err(local("cannot move into place", &new, e));
        }
        let new_dir = self.root.join("new");
        File::open(&new_dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| local("cannot sync", &new_dir, e))?;
        Ok(Accepted {
            detail: format!("delivered to {}", new.display()),
            refused: Vec::new(),
        })
    }

    fn unique_name(&self, size: usize) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let mut r = [0u8; 4];
        // Without entropy the pid, sequence and microseconds still make the name unique here.
        let _ = getrandom::fill(&mut r);
        format!(
            "{}.M{}P{}Q{}R{:08x}.{},S={size}",
            now.as_secs(),
            now.subsec_micros(),
            std::process::id(),
            self.seq.fetch_add(1, Ordering::Relaxed),
            u32::from_le_bytes(r),
            self.host
        )
    }
}

/// `Return-Path:` and `Delivered-To:` lines, as a local MDA writes them (RFC 5321 §4.4).
/// Envelope addresses were checked when the job was made; anything that could break a header
/// line is dropped here all the same.
fn header_lines(env: &MailEnvelope) -> Vec<u8> {
    let clean = |s: &str| -> String {
        s.chars()
            .filter(|c| !c.is_control() && *c != '<' && *c != '>')
            .take(320)
            .collect()
    };
    let mut h = format!("Return-Path: <{}>\r\n", clean(&env.from));
    for t in &env.to {
        h.push_str(&format!("Delivered-To: {}\r\n", clean(t)));
    }
    h.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delivers_whole_files_into_new() {
        let d = tempfile::tempdir().unwrap();
        let m = Maildir::new(d.path().join("Maildir"), "gw/x:1");
        let env = MailEnvelope {
            from: "fax-gateway@example.com".into(),
            to: vec!["a@example.com".into(), "b@example.com\r\nX: y".into()],
            envid: None,
        };
        let a = m
            .deliver(&env, b"Subject: one\r\n\r\nbody\r\n")
            .await
            .unwrap();
        m.deliver(&env, b"Subject: two\r\n\r\nbody\r\n")
            .await
            .unwrap();
        assert!(a.detail.contains("/new/"));
        let new: Vec<_> = fs::read_dir(d.path().join("Maildir/new"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(new.len(), 2);
        assert_eq!(
            fs::read_dir(d.path().join("Maildir/tmp")).unwrap().count(),
            0
        );
        let name = new[0].file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.contains(".gw\\x-1,S="), "{name}");
        assert_ne!(new[0], new[1]);
        let mut texts: Vec<String> = new.iter().map(|p| fs::read_to_string(p).unwrap()).collect();
        texts.sort();
        assert_eq!(
            texts[0],
            "Return-Path: <fax-gateway@example.com>\r\nDelivered-To: a@example.com\r\n\
             Delivered-To: b@example.comX: y\r\nSubject: one\r\n\r\nbody\r\n"
        );
    }

    #[tokio::test]
    async fn unwritable_maildir_is_a_local_error() {
        let d = tempfile::tempdir().unwrap();
        let blocker = d.path().join("file");
        fs::write(&blocker, b"x").unwrap();
        let m = Maildir::new(blocker.join("Maildir"), "gw");
        let env = MailEnvelope {
            from: String::new(),
            to: vec!["a@example.com".into()],
            envid: None,
        };
        let e = m.deliver(&env, b"x").await.unwrap_err();
        assert!(matches!(e, DeliveryError::Local(_)), "{e:?}");
        assert_eq!(e.class(), crate::scheduler::CauseClass::LocalTemporary);
    }
}
