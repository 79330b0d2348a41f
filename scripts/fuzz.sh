#!/usr/bin/env bash
# Fuzzes every parser of untrusted bytes (fuzz/fuzz_targets/, cargo-fuzz + libFuzzer, nightly):
#
#   bash scripts/fuzz.sh [SECONDS per target, default 600] [target ...]
#
# Installs cargo-fuzz if missing (crates.io), builds the targets without a sanitizer (the code
# under test is safe Rust: what fuzzing looks for is panics, aborts, hangs and runaway memory,
# which libFuzzer reports as crashes, timeouts and OOMs), then runs JOBS targets at a time
# (default 2), each from the committed seeds (fuzz/corpus/<target>) plus a working corpus kept
# in target/fuzz-corpus/<target> between runs. Failing inputs land in fuzz/artifacts/<target>/.
# Prints, and writes to target/fuzz-report.md, one row per target: runs, seconds, corpus,
# coverage, the CPU seconds the target got (user + system, all its workers), and what was found.
#
#   BINS=dir FORK=2 bash scripts/fuzz.sh SECONDS [target ...]
#
# runs prebuilt target binaries from dir instead (what `cargo +nightly fuzz build --sanitizer
# none` leaves in fuzz/target/<triple>/release/, e.g. carried to a machine with more cores and no
# toolchain), each in libFuzzer's fork mode with FORK processes (cores) per target.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
secs="${1:-600}"; shift || true
jobs="${JOBS:-2}"
bins="${BINS:-}"; fork="${FORK:-}"
if [ -z "$bins" ]; then
  rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
  command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
  bash scripts/setup.sh >/dev/null   # libtorch (fer-train's config parser links it)
  cargo +nightly fuzz build --sanitizer none || exit 1
fi
# The config target links libtorch (fer-train's config parser); the fuzz binaries carry no
# rpath to it.
[ -d .deps/libtorch/lib ] && export LD_LIBRARY_PATH="$PWD/.deps/libtorch/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(ls fuzz/fuzz_targets | grep -v '^common' | sed 's/\.rs$//')
logs=target/fuzz-logs; mkdir -p "$logs"
run_one() {
  local t="$1" work="target/fuzz-corpus/$1"
  mkdir -p "$work" "fuzz/artifacts/$t"
  local flags=(-max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -max_len=1048576
    -print_final_stats=1 ${fork:+-fork=$fork})
  # CPU seconds (user + system) of the target and its fork-mode workers, beside wall time: on a
  # shared machine they say how much fuzzing a target really got.
  rm -f "$logs/$t.cpu"
  local timer=(/usr/bin/time -f '%U %S' -o "$logs/$t.cpu")
  [ -x /usr/bin/time ] || timer=()
  if [ -n "$bins" ]; then
    "${timer[@]}" "$bins/$t" "$work" "fuzz/corpus/$t" "${flags[@]}" > "$logs/$t.log" 2>&1
  else
    "${timer[@]}" cargo +nightly fuzz run --sanitizer none "$t" "$work" "fuzz/corpus/$t" -- \
      "${flags[@]}" > "$logs/$t.log" 2>&1
  fi
  echo $? > "$logs/$t.rc"
}
export -f run_one; export secs logs bins fork
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one {}'
{
  echo "| target | runs | seconds | CPU seconds | corpus (inputs) | coverage (edges) | result |"
  echo "|---|---:|---:|---:|---:|---:|---|"
  for t in "${targets[@]}"; do
    log="$logs/$t.log"; rc=$(cat "$logs/$t.rc" 2>/dev/null || echo "?")
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    [ -n "$runs" ] || runs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')   # fork mode
    took=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | awk '{print $5}' | tail -1)
    [ -n "$took" ] || took=$(grep -oE 'time: [0-9]+s' "$log" | tail -1 | grep -oE '[0-9]+')
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | awk '{print $2}')
    cpu=$(tail -1 "$logs/$t.cpu" 2>/dev/null | awk '{printf "%.0f", $1 + $2}')
    corpus=$(ls "target/fuzz-corpus/$t" | wc -l)
    found=$(grep -m1 -oE 'deadly signal|panicked at [^ ]*|ERROR: libFuzzer: [a-z-]*' "$log")
    if [ "$rc" = 0 ]; then res="nothing found"; else res="exit $rc: ${found:-see $log}; input in fuzz/artifacts/$t/"; fi
    echo "| $t | ${runs:-?} | ${took:-?} | ${cpu:-?} | $corpus | ${cov:-?} | $res |"
  done
} | tee target/fuzz-report.md
