#!/bin/sh
# line-up.sh — a phone line on one machine for faxgate's tests: two stock iaxmodem soft modems
# (spandsp T.31 Class 1) calling each other over IAX2 on 127.0.0.1, inside a private network
# namespace that holds only loopback (iaxmodem binds 0.0.0.0; here nothing else can reach it,
# and several lines can run at once without port clashes).
#
# Prints on stdout:   MODEM_A=<dir>/ttyA
#                     MODEM_B=<dir>/ttyB
# Dial any number on one modem (ATD5550002) and the other one rings.
#
# Environment:
#   RIG_RUN  state dir: configs, pid files, logs, device links (default /tmp/faxgate-line).
#            iaxmodem limits the device path to 63 characters.
#   PORT_A / PORT_B  UDP ports (default 4571 / 4572; private to the namespace).
# Needs: iaxmodem (Debian package iaxmodem), unshare (util-linux), ip (iproute2), stty
# (coreutils), a `uucp` user (iaxmodem drops privileges to it). Root or user namespaces.
set -eu

RIG_RUN=${RIG_RUN:-/tmp/faxgate-line}
PORT_A=${PORT_A:-4571}
PORT_B=${PORT_B:-4572}
IAXMODEM=$(command -v iaxmodem || echo /usr/sbin/iaxmodem)

die() { echo "line-up: $*" >&2; exit 1; }
[ -x "$IAXMODEM" ] || die "iaxmodem is missing: apt-get install iaxmodem"
getent passwd uucp >/dev/null || die "iaxmodem wants a 'uucp' user"

mkdir -p "$RIG_RUN/cfg" "$RIG_RUN/log"
RIG_RUN=$(cd "$RIG_RUN" && pwd -P)
[ ${#RIG_RUN} -le 56 ] || die "RIG_RUN path too long for iaxmodem: $RIG_RUN"
if [ -f "$RIG_RUN/ns.pid" ] && kill -0 "$(cat "$RIG_RUN/ns.pid")" 2>/dev/null; then
    die "a line is already up in $RIG_RUN (run line-down.sh)"
fi

# One config per modem; each one's server is the other's port.
conf() { # name device port peer_port caller_number
    {
        echo "device $2"
        echo "owner $(id -un):$(id -gn)"
        echo "mode 660"
        echo "port $3"
        echo "refresh 0"
        echo "server 127.0.0.1:$4"
        echo "peername $1"
        echo "secret none"
        echo "cidname Modem $1"
        echo "cidnumber $5"
        echo "codec slinear"
    } >"$RIG_RUN/cfg/$1"
}
conf modemA "$RIG_RUN/ttyA" "$PORT_A" "$PORT_B" 1001
conf modemB "$RIG_RUN/ttyB" "$PORT_B" "$PORT_A" 1002
rm -f "$RIG_RUN/ttyA" "$RIG_RUN/ttyB" "$RIG_RUN"/modem?.pid

# iaxmodem takes a config *name* and reads /etc/iaxmodem/<name>; a relative name that climbs
# out of /etc/iaxmodem reaches our directory without touching /etc.
export IAXMODEM RIG_RUN REL="../..$RIG_RUN/cfg"
if [ "$(id -u)" = 0 ]; then NS="unshare --net"; else NS="unshare --map-root-user --net"; fi
setsid $NS sh -c '
    ip link set lo up
    "$IAXMODEM" "$REL/modemA" >"$RIG_RUN/log/modemA.log" 2>&1 & echo $! >"$RIG_RUN/modemA.pid"
    "$IAXMODEM" "$REL/modemB" >"$RIG_RUN/log/modemB.log" 2>&1 & echo $! >"$RIG_RUN/modemB.pid"
    wait' </dev/null >"$RIG_RUN/log/ns.log" 2>&1 &
echo $! >"$RIG_RUN/ns.pid"

# Ready when both device links exist and each modem answers AT with OK.
answers_at() {
    stty -F "$1" raw -echo 2>/dev/null || return 1
    (sleep 0.3; printf 'AT\r') >"$1" &
    w=$!
    r=$(timeout 1 cat <"$1" 2>/dev/null | tr -d "\r\n" || true)
    wait "$w"
    case "$r" in *OK*) return 0 ;; *) return 1 ;; esac
}
n=0
until [ -e "$RIG_RUN/ttyA" ] && [ -e "$RIG_RUN/ttyB" ] &&
      answers_at "$RIG_RUN/ttyA" && answers_at "$RIG_RUN/ttyB"; do
    n=$((n + 1))
    if [ $n -ge 40 ]; then
        cat "$RIG_RUN"/log/*.log >&2 || true
        die "modems did not come up (logs above)"
    fi
    sleep 0.25
done
echo "MODEM_A=$RIG_RUN/ttyA"
echo "MODEM_B=$RIG_RUN/ttyB"
