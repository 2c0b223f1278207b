#!/usr/bin/env bash
# Fills the (gitignored) corpus directories with seeds: the bundled flows, the broken-flow
# corpus and generated valid flows for `flow_json`; the committed expressions and templates,
# plus every expression and template found in the bundled flows, for `expr`.
# Usage: flows/fuzz/seed.sh   (from anywhere; uses jq, if present, for the strings of the flows)
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/flow_json corpus/expr

cp ../library/*.flow.json corpus/flow_json/
if compgen -G "../tests/broken/*.json" >/dev/null; then
  for f in ../tests/broken/*.json; do cp "$f" "corpus/flow_json/broken-$(basename "$f")"; done
fi
cargo run --quiet --release --bin gen_flows -- corpus/flow_json 60

cp seeds/expr/* corpus/expr/
if command -v jq >/dev/null; then
  # Every string of the bundled flows (conditions, assignments, templates, …); libFuzzer keeps
  # the ones that add coverage.
  for f in ../library/*.flow.json; do
    name=$(basename "$f" .flow.json)
    jq -r '.nodes | .. | strings | select(length > 2) | @json' "$f" | sort -u | nl -w1 -s' ' |
      while read -r i line; do
        printf '%s' "$(jq -r . <<<"$line")" > "corpus/expr/flow-$name-$i.txt"
      done
  done
fi
echo "seeds: $(ls corpus/flow_json | wc -l) flows, $(ls corpus/expr | wc -l) expressions"
