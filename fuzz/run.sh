#!/usr/bin/env bash
#  run.sh HARNESS CORPUS WORK SECONDS: one bounded fuzzing run, as CTest
#  runs each harness (fuzz/CMakeLists.txt). The committed corpus is
#  copied to WORK/corpus so that new inputs never touch the repository;
#  a crash's input is kept as WORK/crash-* (its path is printed).
#  Exit status: libFuzzer's (0 only when nothing was found).
set -euo pipefail
harness=$1 corpus=$2 work=$3 seconds=$4
rm -rf "$work"
mkdir -p "$work/corpus"
cp -R "$corpus"/. "$work/corpus/"
#  -close_fd_mask=3: the decoders' own output (import's one line per file)
#  is dropped; libFuzzer's and the sanitizers' reports still show.
exec "$harness" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -close_fd_mask=3 -print_final_stats=1 -artifact_prefix="$work/" "$work/corpus"
