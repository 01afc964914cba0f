#!/usr/bin/env bash
# Builds the seed corpora of the fuzz targets in fuzz/corpus/<target>/ from the shared cases
# (../shared/cases/inputs, or $SHARED_CASES) and the fixtures in tests/data/. Each target reads
# a settings byte first; the seeds use 0 (comma-delimited, default settings) and, for the
# semicolon case, 1. Existing corpus files are kept, so a long run's findings accumulate.
set -euo pipefail
cd "$(dirname "$0")"
cases="${SHARED_CASES:-}"
if [[ -z "$cases" ]]; then
  for candidate in ../../shared/cases/inputs ../shared/cases/inputs; do
    [[ -d "$candidate" ]] && cases="$candidate" && break
  done
fi
inputs=(../tests/data/*.csv)
if [[ -n "$cases" ]]; then
  inputs+=("$cases"/*.csv)
else
  echo "fuzz/seed.sh: no shared cases found; seeding from tests/data only" >&2
fi
mkdir -p corpus/read corpus/header corpus/apply
previous=""
for input in "${inputs[@]}"; do
  name="$(basename "$input" .csv)"
  settings='\x00'
  [[ "$name" == *semicolon* ]] && settings='\x01'
  { printf "$settings"; cat "$input"; } > "corpus/read/$name"
  { printf "$settings"; cat "$input"; } > "corpus/apply/$name"
  { printf 'cluster_name\n'; head -n 1 "$input" | tr -d '\r'; } > "corpus/header/$name"
  # Two files in a row, so the apply target starts from a store that already holds data.
  if [[ -n "$previous" ]]; then
    { printf '\x04'; cat "$previous"; printf '\n=====\n'; cat "$input"; } > "corpus/apply/${name}_after"
  fi
  previous="$input"
done
printf 'cluster_name|region|owner\ncluster_name,Region, owner \n' > corpus/header/required
printf 'Cluster_Name\n\xef\xbb\xbf cluster_name ,region,REGION\n' > corpus/header/bom_repeat
echo "seeded $(ls corpus/read | wc -l) read, $(ls corpus/header | wc -l) header, $(ls corpus/apply | wc -l) apply inputs"
