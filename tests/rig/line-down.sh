#!/bin/sh
# line-down.sh — stop the line started by line-up.sh in $RIG_RUN, by recorded PIDs only.
RIG_RUN=${RIG_RUN:-/tmp/faxgate-line}
is_iaxmodem() { [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q iaxmodem; }
for m in modemA modemB; do
    f="$RIG_RUN/$m.pid"
    [ -f "$f" ] && p=$(cat "$f") && is_iaxmodem "$p" && kill -TERM "$p" 2>/dev/null
done
# Give them 3 s, then insist.
n=0
while [ $n -lt 15 ]; do
    up=0
    for m in modemA modemB; do
        f="$RIG_RUN/$m.pid"
        [ -f "$f" ] && is_iaxmodem "$(cat "$f")" && up=1
    done
    [ $up = 0 ] && break
    n=$((n + 1)); sleep 0.2
done
for m in modemA modemB; do
    f="$RIG_RUN/$m.pid"
    [ -f "$f" ] && p=$(cat "$f") && is_iaxmodem "$p" && kill -KILL "$p" 2>/dev/null
    rm -f "$f"
done
# The namespace's shell exits once its two children are gone.
if [ -f "$RIG_RUN/ns.pid" ]; then
    p=$(cat "$RIG_RUN/ns.pid")
    n=0; while kill -0 "$p" 2>/dev/null && [ $n -lt 10 ]; do n=$((n + 1)); sleep 0.1; done
    kill -0 "$p" 2>/dev/null && kill -TERM "$p" 2>/dev/null
    rm -f "$RIG_RUN/ns.pid"
fi
rm -f "$RIG_RUN/ttyA" "$RIG_RUN/ttyB"
echo "line down"
