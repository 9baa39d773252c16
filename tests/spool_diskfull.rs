//! Disk full (issue 5 acceptance): the spool on a small tmpfs (mounted here; the tests run as
//! root) fills up. Every failure is a temporary error, and the half-written job is gone.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use faxgate::spool::{JobKind, NewJob, Spool, SpoolError, SpoolOptions};

/// A tmpfs mounted for the test's life.
struct Tmpfs {
    dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let mount = common::require_tool("mount", "mount");
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("mnt");
        std::fs::create_dir(&dir).unwrap();
        let st = Command::new(mount)
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(
            st.success(),
            "mounting a tmpfs failed ({st}): this test must run as root"
        );
        Tmpfs { dir, _tmp: tmp }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}

fn entries(p: &Path) -> usize {
    std::fs::read_dir(p).unwrap().count()
}

#[test]
fn full_disk_gives_temporary_errors_and_leaves_nothing() {
    let fs = Tmpfs::mount("256k");
    let root = fs.dir.join("spool");
    let opts = SpoolOptions {
        min_free_bytes: 0,
        ..SpoolOptions::default()
    };
    let spool = Spool::open(&root, opts).unwrap();

    // Room for a couple of small jobs.
    let mut kept = Vec::new();
    for _ in 0..2 {
        let mut inc = spool.begin(JobKind::MailOut).unwrap();
        inc.write_file("message.eml", &[b'a'; 10_000]).unwrap();
        kept.push(
            inc.commit(NewJob::new(faxgate::job::data::sample(
                JobKind::MailOut,
                "",
            )))
            .unwrap()
            .id,
        );
    }
    let free_before = spool.free_bytes().unwrap();

    // 1. The payload does not fit: the write fails, DiskFull, temporary.
    let mut inc = spool.begin(JobKind::MailOut).unwrap();
    let e = inc
        .write_file("message.eml", &vec![b'x'; 1 << 20])
        .unwrap_err();
    assert!(matches!(e, SpoolError::DiskFull { .. }), "{e}");
    assert!(e.is_temporary() && e.is_out_of_space());
    drop(inc);
    assert_eq!(entries(&root.join("incoming")), 0);
    assert_eq!(spool.free_bytes().unwrap(), free_before);

    // 2. The payload fits but the record does not: commit fails, nothing is queued.
    let mut inc = spool.begin(JobKind::MailOut).unwrap();
    let fill = usize::try_from(free_before).unwrap() - 100;
    inc.write_file("message.eml", &vec![b'y'; fill]).unwrap();
    let e = inc
        .commit(NewJob::new(faxgate::job::data::sample(
            JobKind::MailOut,
            "",
        )))
        .unwrap_err();
    assert!(matches!(e, SpoolError::DiskFull { .. }), "{e}");
    assert!(e.is_temporary());
    assert_eq!(entries(&root.join("incoming")), 0);
    let queued: Vec<_> = spool
        .load()
        .unwrap()
        .jobs
        .into_iter()
        .map(|r| r.id)
        .collect();
    kept.sort();
    assert_eq!(queued, kept);
    assert_eq!(spool.free_bytes().unwrap(), free_before);

    // 3. Below the configured reserve, begin refuses before writing anything.
    drop(spool);
    let reserve = SpoolOptions {
        min_free_bytes: free_before + 1,
        ..SpoolOptions::default()
    };
    let spool = Spool::open(&root, reserve).unwrap();
    let e = spool.begin(JobKind::FaxIn).unwrap_err();
    assert!(matches!(e, SpoolError::NoSpace { .. }), "{e}");
    assert!(e.is_temporary());
    assert_eq!(entries(&root.join("incoming")), 0);

    // And the jobs committed before the disk filled are intact.
    for id in &kept {
        let p = spool.payload_path(id, "message.eml").unwrap();
        assert_eq!(std::fs::read(p).unwrap(), vec![b'a'; 10_000]);
    }
}
