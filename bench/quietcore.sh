#!/bin/bash
# bench/quietcore.sh CMD...: run CMD alone on CPU 1 of a 2-core machine while every other process
# is pinned to CPU 0 (needs permission to set other processes' affinity, e.g. root in a VM/container).
# How the one-core figures in docs/benchmarks.md were taken while other jobs shared the machine.
# One quietcore at a time (a lock); affinities are restored to 0-1 when CMD ends.
exec 9>/tmp/quietcore.lock
if ! flock -w 3600 9; then echo "quietcore: lock busy" >&2; exit 99; fi
"$@" &
pid=$!
tree() { local p=$1; echo $p; for c in $(ps -o pid= --ppid $p 2>/dev/null); do tree $c; done; }
pinloop() {
  while kill -0 $pid 2>/dev/null; do
    mine=" $(tree $pid | tr '\n' ' ') "
    for p in $(ps -eo pid=); do
      if [[ "$mine" == *" $p "* ]]; then taskset -a -pc 1 $p >/dev/null 2>&1; else taskset -a -pc 0 $p >/dev/null 2>&1; fi
    done
    sleep 1
  done
}
pinloop &
loop=$!
wait $pid; rc=$?
kill $loop 2>/dev/null; wait $loop 2>/dev/null
for p in $(ps -eo pid=); do taskset -a -pc 0-1 $p >/dev/null 2>&1; done
exit $rc
