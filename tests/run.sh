#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine (root, Rust 1.95): installs the system tools the
# tests talk to (libtiff, poppler, ghostscript, efax, iaxmodem, swaks, Postfix's smtp-sink, …) when
# missing, then runs rustfmt, clippy and every test. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use, each for a named peer or tool.
PKGS=(
  libtiff-tools      # tiffinfo, tiffcp, tiffdump: decode/inspect every TIFF we write
  libtiff-dev        # libtiff for the codec benchmark's in-process anchor
  poppler-utils      # pdftoppm, pdfinfo: PDF oracle
  ghostscript        # builds test PDFs/corpus; Ghostscript speed anchor
  imagemagick        # corpus photo pages, test images
  netpbm             # pnmtotiff for the corpus
  efax               # efix (second MH oracle), efax (independent fax machine on the rig)
  iaxmodem           # the soft-modem phone line rig
  mgetty-fax         # sendfax: independent Class 2.0 software driving `faxgate modem emulate`
  iproute2           # ip: network namespace for the rig
  swaks              # real SMTP client
  curl               # real HTTP client for the console's REST API
  postfix            # smtp-sink / smtp-source (the daemon is never started)
  python3            # /usr/bin/python3: smtplib, email, aiosmtpd
  python3-aiosmtpd   # SMTP server used as a test relay and benchmark anchor
  python3-prometheus-client  # the Prometheus text parsers /metrics is checked with
  systemd            # systemd-analyze verify
  time               # /usr/bin/time -v for peak RSS
  bc
  openssl            # test CA and leaf certificates for the TLS tests
  perl
  gcc
  libspandsp-dev     # the T.38 test peer (tests/fixtures/t38/spandsp_t38.c, built with gcc)
  pkg-config         # its compiler flags
  sip-tester         # sipp: the SIP peers of tests/sip_sipp.rs and tests/sip_e2e.rs (tests/fixtures/sip/)
  fonts-dejavu-core
  fonts-urw-base35   # the standard-14 PDF fonts poppler and gs draw; our PDF font directory
  chromium           # the console in a real browser (headless)
  chromium-driver    # WebDriver for it
  python3-selenium   # drives it (tests/fixtures/console/browser.py)
  libreoffice-writer-nogui   # soffice: the office converter and its test documents (.docx, .odt)
  libreoffice-calc-nogui     # .xlsx
  libreoffice-impress-nogui  # .pptx
  lintian            # checks the Debian package (tests/debian_package.rs)
  man-db             # man -w finds the installed pages
  bash-completion    # the installed completion, loaded as an interactive shell does
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Postfix is installed for its test tools only; never configure or start a mail system.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
getent passwd uucp >/dev/null || useradd -r -s /usr/sbin/nologin uucp   # iaxmodem runs as uucp

# HylaFAX's faxgetty: independent Class 2.0 receiving software on `faxgate modem emulate`
# (tests/modem_emulate.rs). Debian's hylafax-server conflicts with mgetty-fax (both ship a
# sendfax), so it is unpacked, not installed: no maintainer scripts, no services (faxq, hfaxd),
# no system spool; the test runs faxgetty on a private spool. Its libraries come with
# libtiff-tools (libtiff6, libjbig0).
HYLAFAX_PEER=/opt/faxgate-peers/hylafax   # tests/faxgetty/mod.rs looks here
if [ ! -x "$HYLAFAX_PEER/usr/sbin/faxgetty" ]; then
  echo "== unpacking hylafax-server (faxgetty) into $HYLAFAX_PEER"
  debs=$(mktemp -d)
  (cd "$debs" && { apt-get download hylafax-server hylafax-client >/dev/null 2>&1 \
     || { apt-get update -qq && apt-get download hylafax-server hylafax-client >/dev/null; }; })
  mkdir -p "$HYLAFAX_PEER"
  for d in "$debs"/*.deb; do dpkg-deb -x "$d" "$HYLAFAX_PEER"; done
  rm -rf "$debs"
fi

# A package test killed mid-run (SIGKILL, a timeout) cannot purge what it installed, and every
# daemon test after it would read that /etc/faxgate/faxgate.toml. Its marker says the package
# is the test's own, not one someone installed (tests/debian_package.rs).
PACKAGE_TEST_MARKER=/var/lib/faxgate-package-test.installed   # MARKER in tests/debian_package.rs
if [ -e "$PACKAGE_TEST_MARKER" ]; then
  echo "== purging the faxgate package an interrupted package test left behind"
  dpkg --purge faxgate >/dev/null && rm -f "$PACKAGE_TEST_MARKER"
fi

rustup component add rustfmt clippy >/dev/null 2>&1 || true
# cargo-deb builds the Debian package (tests/debian_package.rs); pinned, builds on Rust 1.95.
CARGO_DEB_VERSION=3.8.0
if [ "$(cargo deb --version 2>/dev/null)" != "cargo-deb $CARGO_DEB_VERSION" ]; then
  echo "== installing cargo-deb $CARGO_DEB_VERSION"
  cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION"
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
# `cargo test --no-fail-fast`, with the test binaries run in three lanes at once instead of one
# after another. Ten binaries run in real time: seven make calls on the soft-modem rig
# (tests/rig/), three carry T.38 and SIP calls over UDP; together ~19 minutes, spent mostly
# waiting on audio time, not CPU. Each rig line has its own network namespace and the UDP tests
# take free loopback ports, so two real-time lanes run side by side. Everything else runs in the
# third lane at a lower CPU priority (nice), so a render or a browser never starves a call in
# progress. Doc tests run last. Each lane's output is printed whole, as cargo prints it.
REALTIME_LANE_A=(modem_emulate t38_spandsp setup_rig console_live receive_safety)
REALTIME_LANE_B=(modem_efax daemon_rig modem_rig t38_interop sip_e2e)
echo "== cargo test (build)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
trap 'trap - INT TERM; kill 0' INT TERM
cargo test --locked --no-run --message-format=json-render-diagnostics >"$work/artifacts.json"
# One line per test binary: <target name> <executable> <label as cargo prints it>.
python3 - "$work/artifacts.json" "$PWD" >"$work/binaries" <<'PY'
import json, os, sys
root, rows = sys.argv[2], []
for line in open(sys.argv[1]):
    a = json.loads(line)
    if a.get("reason") != "compiler-artifact" or not a.get("executable") or not a["profile"]["test"]:
        continue
    t = a["target"]
    src = os.path.relpath(t["src_path"], root)
    label = src if "test" in t["kind"] else "unittests " + src
    rows.append((not label.startswith("unittests"), label, t["name"], a["executable"]))
for _, label, name, exe in sorted(rows):
    print(name, exe, label)
PY
lane_of() {
  local n
  for n in "${REALTIME_LANE_A[@]}"; do [ "$1" = "$n" ] && { echo a; return; }; done
  for n in "${REALTIME_LANE_B[@]}"; do [ "$1" = "$n" ] && { echo b; return; }; done
  echo c
}
for n in "${REALTIME_LANE_A[@]}" "${REALTIME_LANE_B[@]}"; do
  grep -q "^$n " "$work/binaries" || { echo "run.sh: no test binary $n (REALTIME_LANE_*)" >&2; exit 1; }
done
run_lane() { # lane letter; runs its binaries in cargo's order (unit tests, then by path)
  local name exe label
  while read -r name exe label; do
    [ "$(lane_of "$name")" = "$1" ] || continue
    echo "     Running $label ($exe)"
    "$exe" </dev/null 2>&1 || echo "$label" >>"$work/failed"
  done <"$work/binaries"
}
echo "== cargo test (three lanes: ${REALTIME_LANE_A[*]} | ${REALTIME_LANE_B[*]} | the rest)"
declare -A lane_pid
run_lane a >"$work/lane-a.log" 2>&1 &
lane_pid[a]=$!
run_lane b >"$work/lane-b.log" 2>&1 &
lane_pid[b]=$!
{
  renice -n 10 -p "$BASHPID" >/dev/null
  run_lane c
  echo "   Doc-tests"
  cargo test --locked --doc 2>&1 || echo "--doc" >>"$work/failed"
} >"$work/lane-c.log" 2>&1 &
lane_pid[c]=$!
for lane in c a b; do
  wait "${lane_pid[$lane]}" || true
  echo "== lane $lane"
  cat "$work/lane-$lane.log"
done
if [ -s "$work/failed" ]; then
  echo "error: $(wc -l <"$work/failed") targets failed:"
  sed 's/^/    /' "$work/failed"
  exit 101
fi
echo "== all tests passed"
