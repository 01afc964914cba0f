#!/usr/bin/env bash
# Runs every fuzz target for a while with libFuzzer through cargo-fuzz, on the stable toolchain
# (RUSTC_BOOTSTRAP=1 lets it take the unstable flags cargo-fuzz passes).
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]   (default: 30 s each, targets read header apply)
#
# Installs cargo-fuzz if it is missing, seeds the corpora (fuzz/seed.sh), and stops at the first
# target that finds a crash, leak, time-out or out-of-memory input (saved in fuzz/artifacts/).
# Extra libFuzzer flags can be given in FUZZ_FLAGS, and the sanitizer in FUZZ_SANITIZER
# (default none: the targets are safe Rust plus SQLite, and without ASan the build is quicker
# and each execution several times faster; use address for a long run).
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-30}"
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(read header apply)
sanitizer="${FUZZ_SANITIZER:-none}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz/run.sh: installing cargo-fuzz"
  cargo install --locked cargo-fuzz --version 0.13.2
fi
./seed.sh
cargo fuzz build -s "$sanitizer"

total=0
for target in "${targets[@]}"; do
  log="$(mktemp)"
  # -max_len: 64 KiB files reach every rule; -rss_limit_mb: memory must not grow unbounded.
  # shellcheck disable=SC2086
  if ! cargo fuzz run -s "$sanitizer" "$target" "corpus/$target" -- \
      -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=1024 -timeout=10 \
      -dict=csv.dict -print_final_stats=1 ${FUZZ_FLAGS:-} >"$log" 2>&1; then
    grep -A 12 'panicked at' "$log" | grep -v '^ *[0-9]*: \|^ *at ' | head -n 40 || true
    tail -n 20 "$log"
    echo "fuzz/run.sh: target $target failed; the input is in fuzz/artifacts/$target/" >&2
    rm -f "$log"
    exit 1
  fi
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
  rss="$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")"
  echo "fuzz $target: ${runs:-?} executions in ${seconds} s, no failure (peak RSS ${rss:-?} MB)"
  total=$((total + ${runs:-0}))
  rm -f "$log"
done
echo "fuzz: ${total} executions in all"
