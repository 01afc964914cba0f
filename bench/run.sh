#!/usr/bin/env bash
# Benchmark of the main job (release build): wall time, peak memory (max RSS) and store size for
#   1. the sp500 replay: 190 real snapshots in one inbox, one run (with and without history);
#   2. a generated inbox of about 1 GB (10 files of 1M rows; with and without history);
#   3. one generated file of ~100 MB and one of ~1 GB, to show that peak memory does not grow
#      with file size.
# Usage: bench/run.sh [WORKDIR]   (default /tmp/csv-watchdog-bench; needs ~12 GB free)
# SCALE=0.1 runs a tenth of the rows, for a quick look.
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-/tmp/csv-watchdog-bench}"
scale="${SCALE:-1}"
rows=$(python3 -c "print(int(1_000_000 * $scale))")
cargo build --release -q
bin="$PWD/target/release/csv-watchdog"
shared="${SHARED_DIR:-$PWD/../shared}"
mkdir -p "$work"

measure() {  # $1 = label, $2 = folder with config.json
  local out secs kib
  out=$( { /usr/bin/time -f '%e %M' "$bin" --config "$2/config.json" run -q >/dev/null || true; } 2>&1 | tail -1)
  read -r secs kib <<<"$out"
  printf '%-40s %8s s %6s MiB peak RSS   input %5s MiB   store %5s MiB\n' \
    "$1" "$secs" "$((kib / 1024))" "$(du -sm "$2/csv_archive" | cut -f1)" "$(du -sm "$2/csv_watchdog.db" | cut -f1)"
}

setup() {  # $1 = folder, $2 = key column, $3 = keep_history, $4 = inbox to copy
  rm -rf "$1" && mkdir -p "$1/csv_inbox"
  printf '{"checksum_wait_seconds": 0, "max_file_size_mb": 4096, "key_column": "%s", "keep_history": %s}\n' \
    "$2" "$3" > "$1/config.json"
  cp -p "$4"/* "$1/csv_inbox/"
}

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

sp="$work/sp500-src"
rm -rf "$sp" && mkdir -p "$sp"
i=0
for f in $(ls "$shared/data/sp500-history/"*.csv | sort); do
  cp "$f" "$sp/"
  touch -d "@$((1700000000 + i))" "$sp/$(basename "$f")"
  i=$((i + 1))
done
for history in true false; do
  setup "$work/run" Symbol "$history" "$sp"
  measure "sp500 replay, 190 files, history=$history" "$work/run"
done

gen="$work/gen-src"
if [ ! -f "$gen/.rows-$rows" ]; then
  rm -rf "$gen"
  python3 bench/gen_inbox.py --out "$gen" --files 10 --rows "$rows" >/dev/null
  touch "$gen/.rows-$rows"
fi
for history in true false; do
  setup "$work/run" cluster_name "$history" "$gen"
  measure "generated, 10 files, history=$history" "$work/run"
done

one="$work/one-src"
for n in 1 10; do
  rm -rf "$one" && mkdir -p "$one"
  python3 bench/gen_inbox.py --out "$one" --files 1 --rows "$((rows * n))" >/dev/null
  setup "$work/run" cluster_name true "$one"
  measure "one file of $((rows * n)) rows" "$work/run"
done
rm -rf "$work/run" "$one"
