#!/bin/bash
# Runs every ppp fuzz target (fuzz/fuzz_targets/*.rs) for SECONDS each
# (default 30), one after the other, starting from the committed seed corpus (copied, so the checkout is
# not modified). Exit status is non-zero if any target finds a crash.
# Usage: crates/ppp/fuzz/run-all.sh [SECONDS]    (needs cargo-fuzz; uses RUSTC_BOOTSTRAP=1)
set -euo pipefail
SECS=${1:-30}
cd "$(dirname "$0")/.."
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
status=0
for f in fuzz/fuzz_targets/*.rs; do
  t=$(basename "$f" .rs)
  mkdir -p "$WORK/$t"
  cp -r fuzz/corpus/$t/. "$WORK/$t/"
  if RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none "$t" "$WORK/$t" -- \
      -max_total_time="$SECS" -print_final_stats=1 > "$WORK/$t.log" 2>&1; then
    echo "fuzz $t: ok ($(grep -m1 '^stat::number_of_executed_units' "$WORK/$t.log" | awk '{print $2}') execs in ${SECS}s)"
  else
    echo "fuzz $t: FAILED"; tail -40 "$WORK/$t.log"; status=1
  fi
done
exit $status
