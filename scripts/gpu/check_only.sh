#!/usr/bin/env bash
# Stands in for fer-train (FER_TRAIN=scripts/gpu/check_only.sh) so that a device script's plan
# can be tried on the CPU before device time is spent on it: each `run` it launches is checked
# by the real binary's `fer-train check` (REAL_FER_TRAIN; the same config and --set overrides),
# which writes the resolved config to <output_dir>/<name>.resolved.toml, and an empty run
# directory with a best.safetensors is made, so that the runs that read it as a teacher can be
# checked in turn. Nothing trains. A config that fails the check exits 4 with the check's error
# on stderr (the script's <name>.log); any other subcommand (resume) exits 3.
set -u
real="${REAL_FER_TRAIN:?REAL_FER_TRAIN: the fer-train binary that checks the configs}"
sub=""; args=(); name=""; outdir=""
for a in "$@"; do
  case "$a" in
    -q | --overwrite) ;;
    *) if [ -z "$sub" ]; then sub="$a"; else args+=("$a"); fi ;;
  esac
done
[ "$sub" = run ] || { echo "check_only.sh: only \`run\` is checked, not: $*" >&2; exit 3; }
for a in "${args[@]}"; do
  case "$a" in name=*) name="${a#name=}" ;; output_dir=*) outdir="${a#output_dir=}" ;; esac
done
[ -n "$name" ] && [ -n "$outdir" ] || { echo "check_only.sh: no --set name=/output_dir=" >&2; exit 3; }
"$real" -q check "${args[@]}" > "$outdir/$name.resolved.toml" || exit 4
mkdir -p "$outdir/$name" && : > "$outdir/$name/best.safetensors"
