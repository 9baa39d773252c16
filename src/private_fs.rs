//! Files and directories only the gateway's user may read: the spool (every message and fax
//! in it), the data directory and what the onramp writes there.
//!
//! The modes are given at creation (`0600` files, `0700` directories) instead of trusting
//! the umask: under the README's quick start the umask is usually `022`, which would leave
//! every queued message readable by any local user. (The mode given is still reduced by the
//! umask, never widened by it.)

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of the files we create.
pub const FILE_MODE: u32 = 0o600;
/// Mode of the directories we create.
pub const DIR_MODE: u32 = 0o700;

/// `fs::create_dir` with [`DIR_MODE`].
pub fn create_dir(path: &Path) -> io::Result<()> {
    DirBuilder::new().mode(DIR_MODE).create(path)
}

/// `fs::create_dir_all` with [`DIR_MODE`] for every directory it creates.
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
}

/// `OpenOptions::new()` whose created files get [`FILE_MODE`].
pub fn options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.mode(FILE_MODE);
    o
}

/// `File::create` (write, create, truncate) with [`FILE_MODE`].
pub fn create(path: &Path) -> io::Result<File> {
    options().write(true).create(true).truncate(true).open(path)
}

/// Makes an existing directory [`DIR_MODE`] (one made before the modes were explicit).
pub fn restrict_dir(path: &Path) -> io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(DIR_MODE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn modes_do_not_follow_a_wide_umask() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("a/b");
        create_dir_all(&dir).unwrap();
        create_dir(&dir.join("c")).unwrap();
        create(&dir.join("f")).unwrap();
        for (p, want) in [
            (d.path().join("a"), DIR_MODE),
            (dir.clone(), DIR_MODE),
            (dir.join("c"), DIR_MODE),
            (dir.join("f"), FILE_MODE),
        ] {
            assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, want, "{p:?}");
        }
    }
}
