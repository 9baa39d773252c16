//! The Debian package (issue 19), built with cargo-deb and installed on this machine with dpkg:
//!
//! 1. lintian (Debian's checker) reports no errors;
//! 2. `dpkg -i`: the files are where Debian policy puts them, the service user and its
//!    directories exist; the unit is not enabled, because the shipped config names the site's
//!    secrets and certificate, which a fresh box lacks (`check-config` says which and points
//!    at `faxgate setup`); once they exist `check-config` passes on the installed config and
//!    the unit is enabled as an admin would; `systemd-analyze verify` finds nothing; `man -w faxgate` finds the page; bash completion
//!    completes `faxgate qu` to `queue`; faxgate.toml(5) is the page made from the shipped
//!    config;
//! 3. an upgrade over an edited conffile keeps the edit without asking (stdin closed);
//! 4. `dpkg -r` keeps the config and the spool; `dpkg -P` removes them;
//! 5. a first install over a config that fails `check-config` leaves the unit disabled.
//!
//! The maintainer scripts also run against stand-ins for systemd's tools in a private mount
//! namespace where `/run/systemd/system` exists (systemd is not PID 1 on the test machine): a
//! first install starts the unit, an upgrade restarts it, a failing config starts nothing,
//! removal stops it.
//!
//! Also: the man pages and completions checked in under systemd/debian/ are exactly what
//! `faxgate generate-docs` makes from the current sources.
//!
//! The package test builds with `cargo deb --profile dev --no-build`: it packages the binary
//! this `cargo test` run already built (a release build would add minutes of CI time; the
//! README's command for users, `cargo deb`, builds a release package). It must run as root
//! (CI does), refuses to touch a faxgate package installed by someone else, and purges at the
//! end, panics included.
//!
//! Debian packages: dpkg, lintian, man-db, systemd, bash-completion, gzip; cargo-deb (cargo).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Whether dpkg knows the package in any state (installed or config-files).
fn dpkg_knows(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.ends_with(b"not-installed"))
}

/// `cargo deb` into `out` with this package's version `version` (e.g. `0.1.0-1`).
fn build_deb(out: &Path, version: &str) -> PathBuf {
    let o = run(Command::new(env!("CARGO"))
        .current_dir(MANIFEST)
        .args(["deb", "--profile", "dev", "--no-build", "--fast"])
        .args(["--deb-version", version, "--output"])
        .arg(out));
    let deb = text(&o)
        .lines()
        .rev()
        .find(|l| l.ends_with(".deb"))
        .map(PathBuf::from)
        .expect("cargo deb names the package it wrote");
    assert!(deb.is_file(), "{}", deb.display());
    deb
}

/// Written before this test installs its package and removed once it is purged: a run that
/// was killed (SIGKILL, a CI timeout) never reaches [`Purge`]'s `drop`, and the package and its
/// /etc/faxgate it leaves behind would make every later daemon test read that config (the
/// daemon falls back to /etc/faxgate/faxgate.toml). The marker tells such a leftover from a
/// package someone installed: tests/run.sh and this test purge only a marked one.
const MARKER: &str = "/var/lib/faxgate-package-test.installed";

/// `dpkg --purge faxgate`; once it succeeded the marker goes too.
fn purge() {
    let purged = Command::new("dpkg")
        .args(["--purge", "faxgate"])
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success());
    if purged {
        let _ = std::fs::remove_file(MARKER);
    }
}

/// Purges the package when dropped: the machine is left as it was, panics included.
struct Purge;

impl Purge {
    /// Marks the install about to happen as this test's own (see [`MARKER`]).
    fn arm() -> Purge {
        std::fs::write(
            MARKER,
            "faxgate's tests/debian_package.rs installed the faxgate package; \
             tests/run.sh purges it if this file outlives the test\n",
        )
        .unwrap();
        Purge
    }
}

impl Drop for Purge {
    fn drop(&mut self) {
        purge();
    }
}

/// The completion bash offers for `line` (the last word being completed), loaded the way an
/// interactive shell loads it: bash-completion's loader finds our file by the command's name.
fn bash_complete(line: &str) -> Vec<String> {
    let script = r#"
        source /usr/share/bash-completion/bash_completion
        _completion_loader faxgate
        spec=$(complete -p faxgate) || exit 3
        f=${spec##*-F }; f=${f%% *}
        read -ra COMP_WORDS <<< "$LINE"
        COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
        COMP_LINE=$LINE; COMP_POINT=${#LINE}
        "$f" faxgate "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        printf '%s\n' "${COMPREPLY[@]}"
    "#;
    let o = run(Command::new("bash")
        .args(["--norc", "-c", script])
        .env("LINE", line));
    text(&o).lines().map(str::to_string).collect()
}

#[test]
fn debian_package_installs_upgrades_removes_and_purges_the_debian_way() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test installs a package with dpkg: run it as root (CI does)"
    );
    common::require_tool("dpkg", "dpkg");
    common::require_tool("lintian", "lintian");
    common::require_tool("man", "man-db");
    common::require_tool("systemd-analyze", "systemd");
    common::require_tool("gzip", "gzip");
    assert!(
        Path::new("/usr/share/bash-completion/bash_completion").is_file(),
        "this test needs the Debian package `bash-completion`"
    );
    let cargo_deb = Command::new(env!("CARGO"))
        .args(["deb", "--version"])
        .output();
    assert!(
        cargo_deb.is_ok_and(|o| o.status.success()),
        "this test needs cargo-deb: tests/run.sh installs it (cargo install cargo-deb --locked)"
    );
    if Path::new(MARKER).exists() {
        // A killed earlier run of this test left its package behind: purge it first.
        purge();
    }
    assert!(
        !dpkg_knows("faxgate"),
        "a faxgate package is already on this machine: this test would replace and purge it"
    );

    let work = tempfile::tempdir().unwrap();
    let deb1 = build_deb(work.path(), "0.1.0-1");

    // 1. lintian: no errors (warnings and overrides are listed in the failure message).
    let lint = Command::new("lintian")
        .arg(&deb1)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let lint_out = text(&lint);
    assert!(
        !lint_out.lines().any(|l| l.starts_with("E: ")),
        "lintian errors:\n{lint_out}{}",
        String::from_utf8_lossy(&lint.stderr)
    );

    // 2. Install.
    let _purge = Purge::arm();
    let installed = run(Command::new("dpkg").arg("-i").arg(&deb1));
    let said = String::from_utf8_lossy(&installed.stderr);
    assert!(said.contains("faxgate setup"), "{said}");
    for f in [
        "/usr/bin/faxgate",
        "/etc/faxgate/faxgate.toml",
        "/etc/faxgate/modems/generic-class1.toml",
        "/etc/faxgate/modems/iaxmodem.toml",
        "/lib/systemd/system/faxgate.service",
        "/usr/lib/sysusers.d/faxgate.conf",
        "/usr/lib/tmpfiles.d/faxgate.conf",
        "/lib/udev/rules.d/60-faxgate.rules",
        "/usr/share/man/man8/faxgate.8.gz",
        "/usr/share/man/man8/faxgate-queue.8.gz",
        "/usr/share/man/man8/faxgate-setup.8.gz",
        "/usr/share/man/man5/faxgate.toml.5.gz",
        "/usr/share/bash-completion/completions/faxgate",
        "/usr/share/zsh/vendor-completions/_faxgate",
        "/usr/share/fish/vendor_completions.d/faxgate.fish",
        "/usr/share/doc/faxgate/README.md",
        "/usr/share/doc/faxgate/copyright",
        "/usr/share/doc/faxgate/changelog.Debian.gz",
    ] {
        assert!(Path::new(f).is_file(), "{f} not installed");
    }
    let conffiles = text(&run(Command::new("dpkg-query").args([
        "-W",
        "-f=${Conffiles}",
        "faxgate",
    ])));
    assert!(
        conffiles.contains("/etc/faxgate/faxgate.toml "),
        "not a conffile: {conffiles}"
    );
    // The service user (sysusers.d), in dialout for the modems; its directories (tmpfiles.d).
    let user = text(&run(Command::new("id").arg("faxgate")));
    assert!(user.contains("(dialout)"), "{user}");
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let spool = std::fs::metadata("/var/spool/faxgate").expect("spool directory");
        assert_eq!(spool.permissions().mode() & 0o777, 0o750);
        let owner = text(&run(Command::new("stat").args([
            "-c",
            "%U:%G",
            "/var/spool/faxgate",
            "/etc/faxgate",
        ])));
        assert_eq!(owner, "faxgate:faxgate\nroot:faxgate\n");
        assert!(spool.uid() != 0);
    }
    // Not enabled: the shipped config names files a fresh box lacks, and check-config says
    // which (a daemon started now would only fail and restart).
    let wants = Path::new("/etc/systemd/system/multi-user.target.wants/faxgate.service");
    assert!(!wants.is_symlink(), "enabled with files missing");
    let check = Command::new("/usr/bin/faxgate")
        .args(["check-config", "/etc/faxgate/faxgate.toml"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(1));
    let said = String::from_utf8_lossy(&check.stderr);
    assert!(
        said.contains("relay.password_file: /etc/faxgate/relay-password"),
        "{said}"
    );
    // The admin puts them in place (contents are not checked here), the check passes on the
    // installed config, and the admin enables the unit (offline: systemd is not PID 1 here).
    std::fs::create_dir_all("/etc/faxgate/tls").unwrap();
    for f in ["users", "tls/cert.pem", "tls/key.pem", "relay-password"] {
        std::fs::write(Path::new("/etc/faxgate").join(f), b"placeholder\n").unwrap();
    }
    run(Command::new("/usr/bin/faxgate").args(["check-config", "/etc/faxgate/faxgate.toml"]));
    run(Command::new("systemctl").args(["enable", "faxgate.service"]));
    assert!(wants.is_symlink(), "the unit is not enabled");
    let verify = run(
        Command::new("systemd-analyze").args(["verify", "/lib/systemd/system/faxgate.service"])
    );
    let said = format!(
        "{}{}",
        text(&verify),
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(said.trim().is_empty(), "systemd-analyze verify: {said}");
    let man = text(&run(Command::new("man").args(["-w", "faxgate"])));
    assert_eq!(man.trim(), "/usr/share/man/man8/faxgate.8.gz");
    let man5 = text(&run(Command::new("man").args(["-w", "5", "faxgate.toml"])));
    assert_eq!(man5.trim(), "/usr/share/man/man5/faxgate.toml.5.gz");
    // The installed faxgate.toml(5) is the page made from the installed config.
    let page = text(&run(
        Command::new("gzip").args(["-dc", "/usr/share/man/man5/faxgate.toml.5.gz"])
    ));
    let conf = std::fs::read_to_string("/etc/faxgate/faxgate.toml").unwrap();
    assert_eq!(page, faxgate::cli::docs::config_man_page(&conf).unwrap());
    // `man` renders it without complaint.
    let rendered = run(Command::new("man")
        .args(["-l", "/usr/share/man/man5/faxgate.toml.5.gz"])
        .env("MANWIDTH", "100")
        .env("MAN_KEEP_STDERR", "1"));
    assert!(text(&rendered).contains("max_messages_per_minute = 60"));
    assert!(
        rendered.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    assert_eq!(bash_complete("faxgate qu"), ["queue"]);
    assert!(bash_complete("faxgate queue l").contains(&"list".to_string()));

    // 3. Upgrade over an edited conffile, stdin closed: dpkg must not ask, and keeps the edit.
    let edit = "\n# site edit: kept across upgrades\n";
    let mut edited = conf.clone();
    edited.push_str(edit);
    std::fs::write("/etc/faxgate/faxgate.toml", &edited).unwrap();
    std::fs::write("/var/spool/faxgate/keep-me", b"queued").unwrap();
    let deb2 = build_deb(work.path(), "0.1.0-2");
    run(Command::new("dpkg")
        .args(["-i", "--force-confold"])
        .arg(&deb2));
    assert_eq!(
        std::fs::read_to_string("/etc/faxgate/faxgate.toml").unwrap(),
        edited
    );
    let version = text(&run(Command::new("dpkg-query").args([
        "-W",
        "-f=${Version}",
        "faxgate",
    ])));
    assert_eq!(version, "0.1.0-2");
    assert!(wants.is_symlink(), "an upgrade keeps the unit enabled");

    // 4. Remove keeps config and spool; purge removes them.
    run(Command::new("dpkg").args(["-r", "faxgate"]));
    assert!(!Path::new("/usr/bin/faxgate").exists());
    assert_eq!(
        std::fs::read_to_string("/etc/faxgate/faxgate.toml").unwrap(),
        edited
    );
    assert!(Path::new("/var/spool/faxgate/keep-me").is_file());
    run(Command::new("dpkg").args(["-P", "faxgate"]));
    for gone in [
        "/etc/faxgate",
        "/var/spool/faxgate",
        wants.to_str().unwrap(),
    ] {
        assert!(
            !Path::new(gone).exists() && !Path::new(gone).is_symlink(),
            "{gone} survives purge"
        );
    }
    assert!(!dpkg_knows("faxgate"));

    // 5. A first install over a config that does not check (an admin's file kept with
    //    --force-confold) installs, but leaves the unit disabled and says what to do.
    std::fs::create_dir_all("/etc/faxgate").unwrap();
    std::fs::write("/etc/faxgate/faxgate.toml", "[gateway]\nno_such_key = 1\n").unwrap();
    let out = run(Command::new("dpkg")
        .args(["-i", "--force-confold"])
        .arg(&deb1));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("faxgate setup"), "{said}");
    assert!(
        !wants.is_symlink(),
        "enabled with a config that fails check-config"
    );
    run(Command::new("dpkg").args(["-P", "faxgate"]));
    assert!(!Path::new("/etc/faxgate").exists());
}

/// The checked-in man pages and completions (packaged from systemd/debian/) are exactly what
/// `faxgate generate-docs` makes now: a changed verb, flag or config comment without
/// regenerating them fails here.
#[test]
fn debian_package_docs_are_generated_from_the_current_sources() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::faxgate(dir.path())
        .args(["generate-docs", "gen"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let fresh = dir.path().join("gen");
    let shipped = Path::new(MANIFEST).join("systemd/debian");
    let mut n = 0;
    for sub in ["man", "completions"] {
        let mut names: Vec<_> = std::fs::read_dir(fresh.join(sub))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        let mut have: Vec<_> = std::fs::read_dir(shipped.join(sub))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        have.sort();
        assert_eq!(
            names, have,
            "systemd/debian/{sub} is stale: run `cargo run -- generate-docs systemd/debian`"
        );
        for name in names {
            let a = std::fs::read(fresh.join(sub).join(&name)).unwrap();
            let b = std::fs::read(shipped.join(sub).join(&name)).unwrap();
            assert!(
                a == b,
                "systemd/debian/{sub}/{} is stale: run `cargo run -- generate-docs systemd/debian`",
                name.to_string_lossy()
            );
            n += 1;
        }
    }
    assert!(n > 20, "{n} files");
}

/// Runs the maintainer script `script` with `args` as if systemd were PID 1: in a private mount
/// namespace with `/run/systemd/system` present, and with stand-ins for the tools it calls
/// (each logs its arguments); `enabled` is what `deb-systemd-helper is-enabled/was-enabled`
/// answers, `config_ok` what `faxgate check-config` does. Returns the log.
fn script_under_systemd(script: &str, args: &[&str], enabled: bool, config_ok: bool) -> String {
    common::require_tool("unshare", "util-linux");
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let log = dir.path().join("log");
    let stub = |name: &str, body: &str| {
        use std::os::unix::fs::PermissionsExt;
        let p = bin.join(name);
        std::fs::write(
            &p,
            format!("#!/bin/sh\necho \"{name} $*\" >> \"$STUB_LOG\"\n{body}\n"),
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    let answer = |yes: bool| if yes { "exit 0" } else { "exit 1" };
    stub(
        "deb-systemd-helper",
        &format!(
            "case \"$*\" in *is-enabled*|*was-enabled*) {};; esac",
            answer(enabled)
        ),
    );
    stub("deb-systemd-invoke", "");
    stub("systemctl", "");
    stub("systemd-sysusers", "");
    stub("systemd-tmpfiles", "");
    stub("faxgate", answer(config_ok));
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script_path = Path::new(MANIFEST).join("systemd/debian").join(script);
    run(Command::new("unshare")
        .args(["-m", "sh", "-c"])
        .arg(
            "mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/system && \
             exec sh \"$0\" \"$@\"",
        )
        .arg(&script_path)
        .args(args)
        .env("PATH", path)
        .env("STUB_LOG", &log));
    std::fs::read_to_string(&log).unwrap_or_default()
}

#[test]
fn debian_package_scripts_start_restart_and_stop_the_unit_under_systemd() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test needs a private mount namespace: run it as root (CI does)"
    );
    // First install, config valid: user, directories, enabled, started.
    let log = script_under_systemd("postinst", &["configure", ""], true, true);
    for want in [
        "systemd-sysusers /usr/lib/sysusers.d/faxgate.conf",
        "systemd-tmpfiles --create /usr/lib/tmpfiles.d/faxgate.conf",
        "deb-systemd-helper enable faxgate.service",
        "systemctl --system daemon-reload",
        "deb-systemd-invoke start faxgate.service",
    ] {
        assert!(log.contains(want), "{want:?} missing:\n{log}");
    }
    assert!(!log.contains("restart"), "{log}");
    // First install, config failing check-config: not enabled, nothing started.
    let log = script_under_systemd("postinst", &["configure", ""], false, false);
    assert!(!log.contains("helper enable"), "{log}");
    assert!(!log.contains("deb-systemd-invoke"), "{log}");
    // Upgrade of an enabled unit: restarted.
    let log = script_under_systemd("postinst", &["configure", "0.1.0-1"], true, true);
    assert!(
        log.contains("deb-systemd-invoke restart faxgate.service"),
        "{log}"
    );
    // Upgrade of a unit the admin disabled: stays disabled and stopped.
    let log = script_under_systemd("postinst", &["configure", "0.1.0-1"], false, true);
    assert!(!log.contains("helper enable"), "{log}");
    assert!(!log.contains("deb-systemd-invoke"), "{log}");
    // Removal stops it; an upgrade's prerm does not (postinst restarts it once).
    let log = script_under_systemd("prerm", &["remove"], true, true);
    assert!(
        log.contains("deb-systemd-invoke stop faxgate.service"),
        "{log}"
    );
    let log = script_under_systemd("prerm", &["upgrade", "0.1.0-2"], true, true);
    assert!(!log.contains("stop"), "{log}");
}
