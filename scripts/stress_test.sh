#!/usr/bin/env bash
# Flakiness check (issue 19 item 9): `make test` in N fresh clones, one after another, each beside a
# CPU-bound process, and a report of every failure.
#
#   scripts/stress_test.sh 3                      # three fresh clones of HEAD, one busy loop beside each
#   VENV=/path/.venv BUSY=2 scripts/stress_test.sh 1 /tmp/stress
#
# Each clone is `git clone` of this repository's HEAD (commit what you want tested). VENV reuses an
# installed virtualenv (its python runs pytest with PYTHONPATH=<clone>/src, so the clone's code is what
# runs); without VENV each clone runs `make test`, which builds its own .venv (slow: torch). The busy
# loops are plain `python -c 'while True: pass'` processes outside pytest's process tree, killed on exit.
# Output: OUT/clone-K.log per run and OUT/summary.txt; exit status 1 if any run failed.
set -uo pipefail
runs="${1:-3}"
out="${2:-$(mktemp -d /tmp/stress_test.XXXXXX)}"
busy="${BUSY:-1}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
commit="$(git -C "$repo" rev-parse --short HEAD)"
mkdir -p "$out"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done; }
trap cleanup EXIT
for _ in $(seq "$busy"); do python3 -c 'while True: pass' & pids+=("$!"); done

failed=0
echo "stress test of $commit: $runs fresh clone(s), $busy busy process(es) beside, $(nproc) cores, $(date -u '+%F %H:%M UTC')" | tee "$out/summary.txt"
for k in $(seq "$runs"); do
  clone="$out/clone-$k"
  rm -rf "$clone" && git clone -q "$repo" "$clone"
  start=$(date +%s)
  if [ -n "${VENV:-}" ]; then
    (cd "$clone" && PYTHONPATH="$clone/src" "$VENV/bin/python" -m pytest -q -p no:cacheprovider) >"$out/clone-$k.log" 2>&1
  else
    (cd "$clone" && make test) >"$out/clone-$k.log" 2>&1
  fi
  status=$?
  line="$(grep -E '^(=+ )?[0-9]+ (passed|failed)|[0-9]+ (passed|failed).* in ' "$out/clone-$k.log" | tail -1)"
  echo "run $k: exit $status, $(( $(date +%s) - start )) s: ${line:-no pytest summary (see $out/clone-$k.log)}" | tee -a "$out/summary.txt"
  grep -E '^(FAILED|ERROR) ' "$out/clone-$k.log" | sed 's/^/    /' | tee -a "$out/summary.txt"
  [ "$status" = 0 ] || failed=$((failed + 1))
done
echo "failed runs: $failed of $runs" | tee -a "$out/summary.txt"
[ "$failed" = 0 ]
