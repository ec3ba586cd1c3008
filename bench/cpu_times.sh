#!/usr/bin/env bash
# CPU time (perf stat task-clock, ms, median of N) and peak RSS (KB) of netlens modes, the
# limit probe and the peers on the benchmark capture. A quicker companion of compare.sh
# whose CPU figures stay meaningful on a machine shared with other work.
# usage: bench/cpu_times.sh [CAPTURE]   (needs perf, GNU time, tcptrace, tcpflow)
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
F=${1:-$HERE/../../bench-data/netlens-1g.pcap}
NL=${NETLENS_BIN:-$HERE/../target/release/netlens}
PROBE=${PROBE_BIN:-/tmp/netlens-bench-probe-target/release/netlens-limit-probe}
[ -f "$F" ] || { echo "no capture at $F: make it with ../shared/bench/gen_traffic.sh" >&2; exit 1; }
cat "$F" > /dev/null
run() { # name, runs, command...
  local name=$1 n=$2; shift 2
  local ts=() rs=()
  for _ in $(seq "$n"); do
    /usr/bin/time -f "%M" -o /tmp/nl-rss.txt perf stat -x, -e task-clock -o /tmp/nl-pstat.txt "$@" >/dev/null 2>/dev/null
    ts+=("$(grep task-clock /tmp/nl-pstat.txt | cut -d, -f1 | cut -d. -f1)"); rs+=("$(tail -1 /tmp/nl-rss.txt)")
  done
  printf "%s\t%s ms\t%s KB\n" "$name" \
    "$(printf "%s\n" "${ts[@]}" | sort -n | sed -n "$(( (n + 1) / 2 ))p")" \
    "$(printf "%s\n" "${rs[@]}" | sort -n | sed -n "$(( (n + 1) / 2 ))p")"
}
run probe-flow 3 "$PROBE" "$F" --level flow --io reader --hash fx
run default 3 "$NL" read "$F"
[ -f "${F%.pcap}.pcapng" ] && run default-pcapng 3 "$NL" read "${F%.pcap}.pcapng"
run conns 3 "$NL" read "$F" --conns --json /dev/null
run mac-arp 3 "$NL" read "$F" --mac-table --arp
run streams 3 "$NL" read "$F" --streams --json /dev/null
run all 3 "$NL" read "$F" --all --json /dev/null
command -v tcptrace >/dev/null && run tcptrace 3 tcptrace -n -l "$F"
if command -v tcpflow >/dev/null; then
  d=$(mktemp -d /dev/shm/nl-tcpflow.XXXXXX); run tcpflow 1 tcpflow -r "$F" -o "$d"; rm -rf "$d"
fi
