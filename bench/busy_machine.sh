#!/usr/bin/env bash
# Does lowbit's default thread count hold up when other processes want the cores? Times `lowbit
# train`, `qat` and `sweep` with the default threads and with --threads 1 and 2, first as the
# machine is, then beside BUSY spinning loops, and prints the medians and default / best --threads.
#
# usage: bench/busy_machine.sh [LOWBIT] [--baseline OTHER_LOWBIT]
#   LOWBIT    the binary to time (default: build/tools/lowbit)
#   OTHER     a second binary timed with its default threads, e.g. one built from an older commit
# environment:
#   LOWBIT_DATA_DIR  a folder with mnist/: full MNIST; otherwise the bundled mnist-10k
#   REPEAT           runs of each configuration, taken in turns (default 3); the table shows medians
#   BUSY             busy loops in the second condition (default 2)
#   CONDITIONS       "idle busy" (default), or one of them
# Nothing else should be started meanwhile; the 1-minute load average before each run is shown.
set -euo pipefail

lowbit=build/tools/lowbit
baseline=""
while (($#)); do
  case $1 in
    --baseline) baseline=$2; shift 2 ;;
    -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
    *) lowbit=$1; shift ;;
  esac
done
repeat=${REPEAT:-3}
busy=${BUSY:-2}
conditions=${CONDITIONS:-idle busy}
for binary in "$lowbit" $baseline; do
  [[ -x $binary ]] || { echo "busy_machine.sh: $binary is not an executable" >&2; exit 2; }
done

work=$(mktemp -d)
loops=()
stop_loops() {
  ((${#loops[@]})) && kill "${loops[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  loops=()
}
trap 'stop_loops; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

if [[ -n ${LOWBIT_DATA_DIR:-} && -d ${LOWBIT_DATA_DIR}/mnist ]]; then
  data=(--dataset mnist --data-dir "$LOWBIT_DATA_DIR")
  train_epochs=3   # 60,000 images an epoch: 1-2 s idle, up to 10x that on a busy 2-core machine
else
  data=(--dataset mnist-10k)
  train_epochs=10
fi

# The float model qat starts from; its quality does not matter here.
"$lowbit" train "${data[@]}" --epochs 1 --out "$work/float.lbm" >/dev/null 2>&1

commands=(
  "train ${data[*]} --epochs $train_epochs --out $work/t.lbm"
  "qat ${data[*]} --model $work/float.lbm --bits 2 --epochs 3 --out $work/q.lbq"
  "sweep ${data[*]} --epochs 2 --out-dir $work/sweep"
)
labels=("train --epochs $train_epochs" "qat --bits 2 --epochs 3" "sweep --epochs 2")
variants=(default 1 2)
[[ -n $baseline ]] && variants+=(baseline)

# run VARIANT COMMAND: prints the wall seconds of one run.
run() {
  local binary=$lowbit threads=()
  case $1 in
    default) ;;
    baseline) binary=$baseline ;;
    *) threads=(--threads "$1") ;;
  esac
  local start=$EPOCHREALTIME
  # shellcheck disable=SC2086  # the command is a list of words
  if ! "$binary" $2 "${threads[@]}" >"$work/out" 2>"$work/err"; then
    echo "busy_machine.sh: failed: $binary $2 ${threads[*]}" >&2
    tail -5 "$work/err" >&2
    exit 1
  fi
  awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f\n", b - a }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

echo "lowbit: $lowbit${baseline:+, baseline: $baseline}; data: ${data[*]}; $repeat runs each"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores; $(date -u '+%Y-%m-%d %H:%M UTC')"
declare -A seconds loads
for condition in $conditions; do
  if [[ $condition == busy ]]; then
    for ((i = 0; i < busy; ++i)); do
      timeout 3600 sh -c 'while :; do :; done' &
      loops+=($!)
    done
    sleep 2
  fi
  for c in "${!commands[@]}"; do
    for ((r = 1; r <= repeat; ++r)); do
      for v in "${variants[@]}"; do
        loads[$condition,$c,$v]+="$(cut -d' ' -f1 /proc/loadavg) "
        seconds[$condition,$c,$v]+="$(run "$v" "${commands[$c]}") "
        echo "  $condition ${labels[$c]} [$v] run $r: $(echo ${seconds[$condition,$c,$v]} | awk '{ print $NF }') s" >&2
      done
    done
  done
  stop_loops
done

header="%-6s %-24s %8s %8s %8s"
[[ -n $baseline ]] && header+=" %9s"
printf "\n$header %13s %10s\n" condition command default "-t 1" "-t 2" ${baseline:+baseline} "default/best" load
for condition in $conditions; do
  for c in "${!commands[@]}"; do
    row=()
    for v in "${variants[@]}"; do row+=("$(tr ' ' '\n' <<<"${seconds[$condition,$c,$v]}" | grep . | median)"); done
    best=$(printf '%s\n' "${row[1]}" "${row[2]}" | sort -g | head -1)
    ratio=$(awk -v d="${row[0]}" -v b="$best" 'BEGIN { printf "%.2f", d / b }')
    load=$(tr ' ' '\n' <<<"${loads[$condition,$c,default]}" | grep . | median)
    printf "$header %13s %10s\n" "$condition" "${labels[$c]}" "${row[@]}" "$ratio" "$load"
  done
done
echo "seconds, median of $repeat; default/best: the default against the faster of --threads 1 and 2;"
echo "load: 1-minute load average before the default runs (median); busy: $busy extra spinning loops."
