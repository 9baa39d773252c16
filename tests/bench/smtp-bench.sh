#!/bin/bash
# SMTP receive benchmark on loopback (127.0.0.1 only): Postfix smtp-source drives
#   1. Postfix smtp-sink (accepts and discards: the protocol ceiling),
#   2. tests/bench/aiosmtpd_fsync.py in fsync mode (one file + fsync per message: the naive
#      durable server),
#   3. faxgate run (every 250 only after the spool commit: fsync + rename),
# in the same run, at 1 KB and 100 KB, 1/10/50 parallel sessions, one connection per message.
# After each faxgate run the committed jobs in spool/queue are counted: every message sent must
# be there. faxgate's idle RSS is read from /proc after start-up.
#
# Not a test: figures are printed (medians of RUNS), nothing is asserted on time.
# Needs (Debian): postfix (only for /usr/sbin/smtp-source and smtp-sink; the postfix daemon is
# never started), python3, python3-aiosmtpd.
# Env: RUNS (default 3), BENCH_DIR (default /tmp/faxgate-smtp-bench), FG_BIN (default: the
# release build of this checkout, built if missing), PYTHON (default /usr/bin/python3).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/../.." && pwd)
W=${BENCH_DIR:-/tmp/faxgate-smtp-bench}; RUNS=${RUNS:-3}; PYTHON=${PYTHON:-/usr/bin/python3}
SINK_PORT=${SINK_PORT:-25450}; PY_PORT=${PY_PORT:-25451}; FG_PORT=${FG_PORT:-25452}
SIZES=${SIZES:-"1024 102400"}; SESSIONS=${SESSIONS:-"1 10 50"}
RCPT="FAX=+12125550142@fax-gw.test"
mkdir -p "$W"; TSV="$W/smtp.tsv"; : > "$TSV"

for t in /usr/sbin/smtp-source /usr/sbin/smtp-sink; do
  [ -x $t ] || { echo "needs $t: apt-get install -y postfix (never start the daemon)"; exit 1; }
done
$PYTHON -c 'import aiosmtpd' 2>/dev/null || { echo "needs aiosmtpd: apt-get install -y python3-aiosmtpd"; exit 1; }

if [ -z "${FG_BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release --bin faxgate) || exit 1
  FG_BIN="$ROOT/target/release/faxgate"
fi

# messages per timed run: a run lasts ~0.5-10 s and stays clear of loopback port exhaustion
count() { case "$1:$2" in
  smtp-sink:1024) echo 4000;; smtp-sink:102400) echo 1500;;
  faxgate:1024) echo 3000;; faxgate:102400) echo 1000;;
  *:1024) echo 1000;; *:102400) echo 400;; esac; }

PID=""
stop() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; PID=""; fi; }
trap stop EXIT
wait_port() { for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 not up"; return 1; }
queued() { find "$W/fg-data/spool/queue" -name job.json 2>/dev/null | wc -l; }

series() { # label port
  local label=$1 port=$2
  for size in $SIZES; do for s in $SESSIONS; do
    local m; m=$(count "$label" "$size")
    for run in $(seq 1 "$RUNS"); do
      local before=0
      if [ "$label" = faxgate ]; then before=$(queued); else rm -rf "$W/py-spool"; mkdir -p "$W/py-spool"; fi
      t0=$(date +%s.%N)
      timeout 600 /usr/sbin/smtp-source -s "$s" -m "$m" -l "$size" -f bench@example.org -t "$RCPT" \
        127.0.0.1:"$port" > "$W/source.out" 2>&1; rc=$?
      t1=$(date +%s.%N)
      case $label in
        faxgate) stored=$(( $(queued) - before ));;
        smtp-sink) stored=-;;
        *) stored=$(find "$W/py-spool" -type f | wc -l);;
      esac
      sec=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.6f", b-a}')
      [ -s "$W/source.out" ] && head -3 "$W/source.out"
      printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n" "$label" "$size" "$s" "$m" "$run" "$sec" "$rc" "$stored" >> "$TSV"
      printf "%-16s size=%-6s sessions=%-2s msgs=%-4s run=%s %7.3fs rc=%s stored=%s\n" "$label" "$size" "$s" "$m" "$run" "$sec" "$rc" "$stored"
      sleep 0.3
    done
  done; done
}

uptime | tee "$W/load.txt"
echo "== smtp-sink"
/usr/sbin/smtp-sink -u nobody 127.0.0.1:$SINK_PORT 1024 > "$W/smtp-sink.log" 2>&1 & PID=$!
wait_port $SINK_PORT && series smtp-sink $SINK_PORT
stop

echo "== aiosmtpd + fsync"
$PYTHON "$HERE/aiosmtpd_fsync.py" $PY_PORT "$W/py-spool" fsync 3600 > "$W/aiosmtpd.log" 2>&1 & PID=$!
wait_port $PY_PORT && series aiosmtpd-fsync $PY_PORT
grep -E 'VmHWM' /proc/$PID/status > "$W/aiosmtpd.rss" 2>/dev/null
stop

echo "== faxgate"
rm -rf "$W/fg-data"; mkdir -p "$W/fg-data"
cat > "$W/faxgate.toml" <<TOML
[gateway]
hostname = "fax-gw.test"
domains = ["fax-gw.test"]
data_dir = "$W/fg-data"
[smtp]
listen = "127.0.0.1:$FG_PORT"
max_connections = 256
max_connections_per_ip = 256
# The benchmark is one client sending as fast as it can: the per-client rate limit is off.
max_messages_per_minute = 0
[log]
filter = "warn"
TOML
(cd "$W" && exec env -u NOTIFY_SOCKET -u FG_BIN "$FG_BIN" -c "$W/faxgate.toml" run > "$W/faxgate.log" 2>&1) & PID=$!
wait_port $FG_PORT || { cat "$W/faxgate.log"; exit 1; }; sleep 1
grep VmRSS /proc/$PID/status | awk '{print "faxgate idle RSS: " $2 " kB"}' | tee "$W/faxgate-idle.rss"
series faxgate $FG_PORT
grep -E 'VmHWM' /proc/$PID/status | awk '{print "faxgate peak RSS: " $2 " kB"}' | tee "$W/faxgate-peak.rss"
stop
uptime | tee -a "$W/load.txt"

$PYTHON - "$TSV" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(list); ok = collections.defaultdict(lambda: True)
for line in open(sys.argv[1]):
    srv, size, sess, msgs, run, sec, rc, stored = line.split("\t")
    k = (srv, int(size), int(sess)); runs[k].append(int(msgs) / float(sec))
    if rc.strip() != "0" or (stored.strip() != "-" and int(stored) != int(msgs)): ok[k] = False
print("\n| size | sessions | smtp-sink msg/s | aiosmtpd+fsync msg/s | faxgate msg/s | faxgate / aiosmtpd+fsync | all faxgate msgs committed |")
print("|---|---|---|---|---|---|---|")
for size in sorted({k[1] for k in runs}):
    for sess in sorted({k[2] for k in runs}):
        med = {s: statistics.median(runs[(s, size, sess)]) for s in ("smtp-sink", "aiosmtpd-fsync", "faxgate") if (s, size, sess) in runs}
        f, a = med.get("faxgate"), med.get("aiosmtpd-fsync")
        ratio = f"{f / a:.1f}x" if f and a else "-"
        cell = lambda s: f"{med[s]:,.0f}" if s in med else "-"
        print(f"| {size} | {sess} | {cell('smtp-sink')} | {cell('aiosmtpd-fsync')} | {cell('faxgate')} | {ratio} | {'yes' if ok[('faxgate', size, sess)] else 'NO'} |")
PY
