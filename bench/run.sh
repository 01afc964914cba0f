#!/usr/bin/env bash
# Benchmark of the main job (release build): wall time and peak memory (max RSS) for
#   1. the sp500 replay: 190 real snapshots in one inbox, one run;
#   2. a generated inbox of about 1 GB (10 files of 1M rows);
#   3. one generated file of ~100 MB and one of ~1 GB, to show that peak memory does not grow
#      with file size.
# Usage: bench/run.sh [WORKDIR]   (default /tmp/csv-watchdog-bench; needs ~6 GB free)
# Set SCALE=0.1 for a quick run with a tenth of the rows.
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-/tmp/csv-watchdog-bench}"
scale="${SCALE:-1}"
rows=$(python3 -c "print(int(1_000_000 * $scale))")
cargo build --release -q
bin="$PWD/target/release/csv-watchdog"
shared="${SHARED_DIR:-$PWD/../shared}"

measure() {  # $1 = label, $2 = folder with config.json
  local out
  out=$( { /usr/bin/time -f '%e %M' "$bin" --config "$2/config.json" run -q >/dev/null || true; } 2>&1 | tail -1)
  read -r secs kib <<<"$out"
  local input_mb
  input_mb=$(du -sm "$2/csv_archive" | cut -f1)
  printf '%-34s %8s s %8s MiB peak RSS  (%s MiB input, store %s MiB)\n' \
    "$1" "$secs" "$((kib / 1024))" "$input_mb" "$(du -sm "$2/csv_watchdog.db" | cut -f1)"
}

setup() {  # $1 = folder
  rm -rf "$1" && mkdir -p "$1/csv_inbox"
  printf '{"checksum_wait_seconds": 0, "max_file_size_mb": 4096, "key_column": "%s"}\n' "$2" > "$1/config.json"
}

setup "$work/sp500" Symbol
i=0
for f in $(ls "$shared/data/sp500-history/"*.csv | sort); do
  cp "$f" "$work/sp500/csv_inbox/"
  touch -d "@$((1700000000 + i))" "$work/sp500/csv_inbox/$(basename "$f")"
  i=$((i + 1))
done
measure "sp500 replay (190 files)" "$work/sp500"

setup "$work/gen" cluster_name
python3 bench/gen_inbox.py --out "$work/gen/csv_inbox" --files 10 --rows "$rows" >/dev/null
measure "generated inbox (10 files)" "$work/gen"

setup "$work/small" cluster_name
python3 bench/gen_inbox.py --out "$work/small/csv_inbox" --files 1 --rows "$rows" >/dev/null
measure "one file, $rows rows" "$work/small"

setup "$work/large" cluster_name
python3 bench/gen_inbox.py --out "$work/large/csv_inbox" --files 1 --rows "$((rows * 10))" >/dev/null
measure "one file, $((rows * 10)) rows" "$work/large"
