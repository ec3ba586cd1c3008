#!/usr/bin/env bash
# netlens benchmark harness: netlens vs the limit probe vs tshark/tcptrace/tcpflow/tcpdump,
# measured side by side in ONE run (compare ratios, not absolute numbers).
#
# usage: bench/compare.sh            (see bench/README.md)
# env:   FILE=PATH        main capture        (default ../bench-data/netlens-1g.pcap, by SCALE)
#        SCALE=0.1        quick run: main capture becomes ../bench-data/netlens-100m.pcap
#                         (1.0 -> netlens-1g.pcap, other X -> netlens-sX.pcap)
#        SMALL=PATH       second, smaller capture (default ../bench-data/netlens-100m.pcap)
#        PCAPNG=PATH      pcapng copy of FILE (default FILE with .pcapng; made with editcap if missing)
#        N=3              runs per measurement (median reported); TSHARK_RUNS=1
#        SKIP_NETLENS=1   do not build or run netlens (peers and probe only)
#        NETLENS_BIN=PATH use this netlens binary instead of building one
#        SKIP_TSHARK=1    skip tshark (slow, ~2-3 GB RSS on the 1 GB capture)
#        GEN=1            generate missing captures with gen_traffic.sh (root, ~2 min per GB)
#        TIMEOUT=900      per-run timeout in seconds (exit 124 -> "timeout")
#        NICE=10          niceness of the cargo builds (measurements are not niced)
#        WARM_EACH=1      re-read the input file (untimed) before every run; 0 = only once
#        PROBE_SRC, PROBE_TARGET, OUT (result JSON path), SHM_DIR (tcpflow output)
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$REPO/bench
SHARED=$(cd "$REPO/.." && pwd)/shared
DATA=${BENCH_DATA:-$(cd "$REPO/.." && pwd)/bench-data}
GEN_SCRIPT=$SHARED/bench/gen_traffic.sh
N=${N:-3}
TSHARK_RUNS=${TSHARK_RUNS:-1}
TIMEOUT=${TIMEOUT:-900}
NICE=${NICE:-10}
WARM_EACH=${WARM_EACH:-1}
SKIP_NETLENS=${SKIP_NETLENS:-0}
SKIP_TSHARK=${SKIP_TSHARK:-0}
PROBE_SRC=${PROBE_SRC:-$SHARED/bench/limit}
PROBE_TARGET=${PROBE_TARGET:-/tmp/netlens-bench-probe-target}
SHM_DIR=${SHM_DIR:-/dev/shm/netlens-bench-tcpflow.$$}
PY=${PYTHON:-python3}

scale_file() {
  case "$1" in
    1|1.0|1.00) echo "$DATA/netlens-1g.pcap" ;;
    0.1|.1|0.10) echo "$DATA/netlens-100m.pcap" ;;
    *) echo "$DATA/netlens-s$1.pcap" ;;
  esac
}
SCALE=${SCALE:-1.0}
FILE=${FILE:-$(scale_file "$SCALE")}
SMALL=${SMALL:-$DATA/netlens-100m.pcap}
PCAPNG=${PCAPNG:-${FILE%.pcap}.pcapng}

die() { echo "compare.sh: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }

[ -x /usr/bin/time ] || die "GNU time is missing: apt-get install -y time"
command -v "$PY" >/dev/null || die "python3 is needed for bench/report.py"

WORK=$(mktemp -d /tmp/netlens-bench.XXXXXX)
cleanup() { rm -rf "$SHM_DIR" "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
RUNS_TSV=$WORK/runs.tsv      # name run exit wall_s rss_kib user_s sys_s elapsed_s_gnu
BENCH_TSV=$WORK/benches.tsv  # name group filekey status note command
META_TSV=$WORK/meta.tsv      # key value
FILES_TSV=$WORK/files.tsv    # key path bytes packets format
: > "$RUNS_TSV"; : > "$BENCH_TSV"; : > "$META_TSV"; : > "$FILES_TSV"
meta() { printf '%s\t%s\n' "$1" "$2" >> "$META_TSV"; }

# ---------------------------------------------------------------- captures
gen_hint() {
  local out=$1 scale=$2
  echo "  sudo bash $GEN_SCRIPT $out $scale     # SCALE 1.0 = ~1 GB / 2.9 M packets / ~2 min" >&2
}
ensure_capture() {  # path scale required
  local f=$1 scale=$2 required=$3
  [ -s "$f" ] && return 0
  if [ "${GEN:-0}" = 1 ]; then
    [ "$(id -u)" = 0 ] || die "GEN=1 needs root (network namespaces)"
    mkdir -p "$(dirname "$f")"
    log "generating $f (SCALE $scale) with gen_traffic.sh"
    bash "$GEN_SCRIPT" "$f" "$scale" >&2 || die "gen_traffic.sh failed for $f"
    return 0
  fi
  echo "compare.sh: capture $f is missing. Make it (outside the repo, as root) with:" >&2
  gen_hint "$f" "$scale"
  echo "  (needs: apt-get install -y tcpdump ethtool iproute2 wireshark-common; or rerun with GEN=1)" >&2
  [ "$required" = 1 ] && exit 1
  return 1
}
ensure_capture "$FILE" "$SCALE" 1
HAVE_SMALL=1
if [ "$(readlink -f "$SMALL")" = "$(readlink -f "$FILE")" ]; then
  HAVE_SMALL=0; log "SMALL is FILE: skipping the separate small-capture rows"
else
  ensure_capture "$SMALL" 0.1 0 || { HAVE_SMALL=0; log "no small capture: skipping its rows"; }
fi
HAVE_PCAPNG=1
if [ ! -s "$PCAPNG" ]; then
  if command -v editcap >/dev/null; then
    log "making pcapng copy $PCAPNG"
    editcap -F pcapng "$FILE" "$PCAPNG" || { HAVE_PCAPNG=0; rm -f "$PCAPNG"; }
  else
    HAVE_PCAPNG=0; log "editcap missing (apt-get install -y wireshark-common): skipping pcapng rows"
  fi
fi

packets_of() {  # capinfos, else the probe's count
  local n=""
  if command -v capinfos >/dev/null; then
    n=$(capinfos -M -c "$1" 2>/dev/null | awk -F: '/Number of packets/ {gsub(/ /,"",$2); print $2}')
  fi
  if [ -z "$n" ] && [ -x "${PROBE:-}" ]; then
    n=$("$PROBE" "$1" --level parse --io reader | sed -n 's/.* packets=\([0-9]*\) .*/\1/p' | head -1)
  fi
  echo "${n:-0}"
}
add_file() {  # key path
  local fmt
  fmt=$(head -c4 "$2" | od -An -tx1 | tr -d ' \n')
  case "$fmt" in 0a0d0d0a) fmt=pcapng ;; d4c3b2a1|a1b2c3d4|4d3cb2a1|a1b23c4d) fmt=pcap ;; *) fmt=unknown ;; esac
  printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$(readlink -f "$2")" "$(stat -c %s "$2")" "$(packets_of "$2")" "$fmt" >> "$FILES_TSV"
}

# ---------------------------------------------------------------- builds
NETLENS=""
NETLENS_BUILD=skipped
if [ "$SKIP_NETLENS" != 1 ] && [ -n "${NETLENS_BIN:-}" ]; then
  NETLENS=$NETLENS_BIN; [ -x "$NETLENS" ] && NETLENS_BUILD=prebuilt || die "NETLENS_BIN=$NETLENS_BIN is not executable"
elif [ "$SKIP_NETLENS" != 1 ]; then
  log "building netlens (release) in $REPO"
  if (cd "$REPO" && nice -n "$NICE" cargo build --release) >"$WORK/netlens-build.log" 2>&1; then
    NETLENS=${CARGO_TARGET_DIR:-$REPO/target}/release/netlens
    [ -x "$NETLENS" ] || NETLENS=$(cd "$REPO" && cargo metadata --format-version 1 --no-deps 2>/dev/null |
      "$PY" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/netlens
    [ -x "$NETLENS" ] && NETLENS_BUILD=ok || NETLENS_BUILD=no-binary
  else
    NETLENS_BUILD=failed
    echo "compare.sh: netlens does not build; its rows are recorded as build-failed. Last lines:" >&2
    tail -15 "$WORK/netlens-build.log" >&2
  fi
fi
meta netlens_build "$NETLENS_BUILD"
meta netlens_git "$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo none)"
meta netlens_dirty "$(git -C "$REPO" status --porcelain 2>/dev/null | grep -qv '^?? bench/' && echo yes || echo no)"

log "building the limit probe from $PROBE_SRC into $PROBE_TARGET"
PROBE=""
if CARGO_TARGET_DIR=$PROBE_TARGET nice -n "$NICE" cargo build --release --locked \
     --manifest-path "$PROBE_SRC/Cargo.toml" >"$WORK/probe-build.log" 2>&1; then
  PROBE=$PROBE_TARGET/release/netlens-limit-probe
else
  echo "compare.sh: the limit probe does not build; probe rows skipped. Last lines:" >&2
  tail -15 "$WORK/probe-build.log" >&2
fi

add_file main "$FILE"
[ "$HAVE_PCAPNG" = 1 ] && add_file pcapng "$PCAPNG"
[ "$HAVE_SMALL" = 1 ] && add_file small "$SMALL"
path_of() { awk -F'\t' -v k="$1" '$1==k {print $2}' "$FILES_TSV"; }

# ---------------------------------------------------------------- environment
meta date "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
meta host "$(hostname -s)"
meta warm_each "$WARM_EACH"
meta kernel "$(uname -r)"
meta cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
meta nproc "$(nproc)"
meta mem_total_kib "$(awk '/MemTotal/ {print $2}' /proc/meminfo)"
meta loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg)"
meta runs "$N"
meta schedule rounds
meta rustc "$(rustc --version 2>/dev/null)"
for t in tshark tcptrace tcpflow tcpdump; do
  command -v $t >/dev/null || continue
  case $t in
    tshark) v=$(tshark --version 2>/dev/null | head -1) ;;
    tcptrace) v=$(tcptrace -v 2>&1 | grep -m1 -o 'version [0-9.]*') ;;
    tcpflow) v=$(tcpflow --version 2>/dev/null | head -1) ;;
    tcpdump) v=$(tcpdump --version 2>&1 | head -1) ;;
  esac
  meta "version_$t" "$v"
done

log "warming the page cache"
while IFS=$'\t' read -r _ p _; do cat "$p" > /dev/null; done < "$FILES_TSV"
if command -v fincore >/dev/null; then
  while IFS=$'\t' read -r k p _; do
    meta "fincore_$k" "$(fincore -n -o RES,SIZE -b "$p" 2>/dev/null | awk '{printf "%.1f%%", ($2>0 ? 100*$1/$2 : 0)}')"
  done < "$FILES_TSV"
fi

# ---------------------------------------------------------------- measuring
# Measurements are planned first and then run in rounds: round i runs every measurement
# once (the i-th run of each), in plan order. On a shared VM the machine's speed drifts
# over minutes (one binary's 1 GB `--all` run took 1.7 to 2.6 s within one minute), so
# the N runs of netlens and the N runs of the probe it is compared with are spread over
# the same stretch of time instead of minutes apart; report.py also gives each ratio per
# round ("paired").
#
# measure NAME GROUP FILEKEY RUNS [pre-hook] -- CMD...   (plans one measurement)
#   netlens exit 2 on the first run = "unsupported" (flag not implemented yet), no more runs.
PLAN=()
measure() {
  local name=$1 group=$2 fkey=$3 runs=$4; shift 4
  local pre=""
  if [ "$1" != -- ]; then pre=$1; shift; fi
  shift   # --
  local k=${#PLAN[@]}
  PLAN+=("$name")
  P_GROUP[k]=$group; P_FKEY[k]=$fkey; P_RUNS[k]=$runs; P_PRE[k]=$pre
  P_CMD[k]=$(printf '%q ' "$@"); P_LINE[k]="$*"; P_STATUS[k]=ok; P_NOTE[k]=""
}
# run_one K ROUND: the ROUND-th run of planned measurement K
run_one() {
  local k=$1 i=$2 name=${PLAN[$1]} rc t0 t1 wall warm
  warm=$(path_of "${P_FKEY[k]}")
  [ -n "${P_PRE[k]}" ] && eval "${P_PRE[k]}"
  # Re-read the input just before every run (untimed): on this VM a page-cache page
  # left alone for half a minute reads about 3x slower the next time (dd of the 1 GB
  # capture: 0.28-0.31 s back to back, 0.81-0.84 s after 45 s idle), so without this
  # whichever tool runs first after a pause pays for it.
  [ -n "$warm" ] && [ "$WARM_EACH" = 1 ] && cat "$warm" > /dev/null
  eval "set -- ${P_CMD[k]}"
  # The wall time is taken by run1.py around GNU time (see its docs for why both).
  rm -f "$WORK/time.txt"
  "$PY" "$BENCH/run1.py" "$TIMEOUT" "$WORK/$name.out" "$WORK/$name.err" "$WORK/run1.txt" \
    -- /usr/bin/time -f '%M %U %S %e' -o "$WORK/time.txt" "$@"
  read -r rc wall < "$WORK/run1.txt" || { rc=1; wall=0; }
  # the last line of time's output holds the numbers ("Command exited ..." may precede it)
  # (no file when a timeout killed GNU time with the command)
  rss=""; us=""; ss=""; es=""
  [ -s "$WORK/time.txt" ] && read -r rss us ss es < <(tail -1 "$WORK/time.txt")
  printf '%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n' "$name" "$i" "$rc" "$wall" "$rss" "$us" "$ss" "$es" >> "$RUNS_TSV"
  if [ "$i" = 1 ] && [ -s "$WORK/$name.out" ] && [ "${P_GROUP[k]}" = probe ]; then
    head -c 2000 "$WORK/$name.out" | head -1 > "$WORK/$name.probe"
  fi
  if [ "$rc" = 2 ] && [ "${P_GROUP[k]}" = netlens ]; then
    P_STATUS[k]=unsupported; P_NOTE[k]=$(head -c 300 "$WORK/$name.err" | head -2 | tr '\t\n' '  ')
  elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    P_STATUS[k]=timeout; P_NOTE[k]="killed after ${TIMEOUT}s"
  elif [ "$rc" != 0 ]; then
    P_STATUS[k]=failed; P_NOTE[k]=$(tail -c 300 "$WORK/$name.err" | tail -2 | tr '\t\n' '  ')
  fi
}
run_planned() {
  local k i most=0
  for k in "${!PLAN[@]}"; do [ "${P_RUNS[k]}" -gt "$most" ] && most=${P_RUNS[k]}; done
  for ((i = 1; i <= most; i++)); do
    log "round $i of $most"
    for k in "${!PLAN[@]}"; do
      # Unsupported and timed-out measurements stop; a failed run is retried next round.
      case "${P_STATUS[k]}" in unsupported|timeout) continue ;; esac
      [ "$i" -le "${P_RUNS[k]}" ] && run_one "$k" "$i"
    done
  done
  for k in "${!PLAN[@]}"; do
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "${PLAN[k]}" "${P_GROUP[k]}" "${P_FKEY[k]}" \
      "${P_STATUS[k]}" "${P_NOTE[k]}" "${P_LINE[k]}" >> "$BENCH_TSV"
    printf '  %-22s %-11s %s\n' "${PLAN[k]}" "${P_STATUS[k]}" \
      "$(awk -F'\t' -v n="${PLAN[k]}" '$1==n {printf "%ss ", $4}' "$RUNS_TSV")" >&2
  done
}
skip() {  # NAME GROUP FILEKEY STATUS NOTE CMD   (a row that is not run, in plan order)
  local k=${#PLAN[@]}
  PLAN+=("$1")
  P_GROUP[k]=$2; P_FKEY[k]=$3; P_RUNS[k]=0; P_PRE[k]=""; P_CMD[k]=""; P_LINE[k]=$6
  P_STATUS[k]=$4; P_NOTE[k]=$5
}

MAIN=$(path_of main); NG=$(path_of pcapng); SM=$(path_of small)

log "planning: netlens"
nl() {  # NAME FILEKEY ARGS...
  local name=$1 fkey=$2; shift 2
  if [ "$SKIP_NETLENS" = 1 ]; then skip "$name" netlens "$fkey" skipped "SKIP_NETLENS=1" "netlens $*"
  elif [ -z "$NETLENS" ]; then skip "$name" netlens "$fkey" build-failed "cargo build --release: $NETLENS_BUILD" "netlens $*"
  else measure "$name" netlens "$fkey" "$N" -- "$NETLENS" "$@"
  fi
}
# Each small-file row is planned right after the same command on the main file, so the
# two runs of a round are seconds apart and report.py's paired growth ratios (per packet,
# RSS) compare them at one speed of the machine; the small --all row writes its JSON
# report to /dev/null like the main one, so the pair is one command on two files.
nl nl-summary        main read "$MAIN"
[ "$HAVE_SMALL" = 1 ] && nl nl-small-summary small read "$SM"
nl nl-packets-json   main read "$MAIN" --packets --json /dev/null
nl nl-conns          main read "$MAIN" --conns
nl nl-handshakes     main read "$MAIN" --handshakes
nl nl-mac-arp        main read "$MAIN" --mac-table --arp
nl nl-streams        main read "$MAIN" --streams
nl nl-all-json       main read "$MAIN" --all --json /dev/null
[ "$HAVE_SMALL" = 1 ] && nl nl-small-all small read "$SM" --all --json /dev/null
[ "$HAVE_PCAPNG" = 1 ] && nl nl-pcapng-summary pcapng read "$NG"

log "planning: limit probe"
pr() {  # NAME FILEKEY ARGS...
  local name=$1 fkey=$2; shift 2
  if [ -z "$PROBE" ]; then skip "$name" probe "$fkey" build-failed "" "netlens-limit-probe $*"
  else measure "$name" probe "$fkey" "$N" -- "$PROBE" "$@"
  fi
}
# --level walk only works on a whole-file buffer (--io mmap|read), not on --io reader
pr probe-walk        main   "$MAIN" --level walk  --io mmap   --hash fx
pr probe-slice       main   "$MAIN" --level slice --io reader --hash fx
pr probe-flow        main   "$MAIN" --level flow  --io reader --hash fx
[ "$HAVE_SMALL" = 1 ] && pr probe-flow-small small "$SM" --level flow --io reader --hash fx
[ "$HAVE_PCAPNG" = 1 ] && pr probe-flow-pcapng pcapng "$NG" --level flow --io reader --hash fx

log "planning: peers"
peer() {  # NAME RUNS PRE TOOL ARGS...
  local name=$1 runs=$2 pre=$3 tool=$4; shift 4
  if ! command -v "$tool" >/dev/null; then skip "$name" peer main missing "$tool not installed" "$tool $*"; return; fi
  measure "$name" peer main "$runs" "$pre" -- "$@"
}
if [ "$SKIP_TSHARK" = 1 ]; then skip tshark-conv peer main skipped "SKIP_TSHARK=1" "tshark -q -z conv,tcp -r FILE"
else peer tshark-conv "$TSHARK_RUNS" "" tshark tshark -q -z conv,tcp -r "$MAIN"; fi
peer tcptrace     "$N" "" tcptrace tcptrace -n -l "$MAIN"
peer tcpflow      "$N" 'rm -rf "$SHM_DIR"' tcpflow tcpflow -r "$MAIN" -o "$SHM_DIR"
peer tcpdump      "$N" "" tcpdump env TZ=UTC tcpdump -nn -r "$MAIN"
peer tcpdump-copy "$N" "" tcpdump tcpdump -r "$MAIN" -w /dev/null

log "planning: the harness's own cost"
# `true` through the same wrappers as every run (run1.py's clock around GNU time): the
# fixed cost each measured wall time includes, about 2.6 ms on the project's machine
# (5 ms before run1.py). report.py also gives the per-packet growth net of it.
measure harness-noop harness none "$N" -- true

log "measuring (rounds of every planned measurement)"
run_planned
rm -rf "$SHM_DIR"

meta loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- report
mkdir -p "$BENCH/results"
OUT=${OUT:-$BENCH/results/$(date -u +%Y%m%d-%H%M%S)-$(hostname -s).json}
"$PY" "$BENCH/report.py" --work "$WORK" --out "$OUT" || die "report.py failed"
echo "raw figures: $OUT" >&2
[ "$NETLENS_BUILD" = failed ] && exit 1
exit 0
