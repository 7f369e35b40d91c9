#!/usr/bin/env bash
# Runs Seraph-V's cargo-fuzz targets (fuzz/), one at a time, then minimizes
# each corpus in place (fuzz/corpus/<target>/, committed; CI replays it on
# stable through crates/seraph-fuzz-harness/tests/corpus_replay.rs).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# SECONDS per target (default 180); all targets if none are named. Needs the
# nightly toolchain; installs cargo-fuzz from crates.io if it is missing.
# A crash stops the script with the reproducer in fuzz/artifacts/<target>/:
# replay it with `cargo +nightly fuzz run <target> <file>`, fix the bug, and
# copy the file into fuzz/corpus/<target>/regression-<what> as the
# regression test (minimization keeps regression-* files).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-180}"
shift || true
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    targets=(elf_boot memory_map lapic pit pic serial hypercall page_walk)
fi

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo +nightly install cargo-fuzz --locked || cargo +nightly install cargo-fuzz
fi

cd fuzz
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    before=$(find "corpus/$target" -type f | wc -l)
    echo "== fuzzing $target for ${seconds}s (corpus: $before files)"
    # One process (no -jobs/-workers): the machine is shared.
    cargo +nightly fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1
    echo "== minimizing corpus/$target"
    # Past crashes (regression-*) always stay: set them aside meanwhile.
    keep="$(mktemp -d)"
    find "corpus/$target" -type f -name 'regression-*' -exec mv {} "$keep/" \;
    cargo +nightly fuzz cmin "$target" "corpus/$target"
    # Then keep a greedy set cover of the edges alone (not hit counts): a
    # few tens of files with the same edge coverage.
    binary="target/$(rustc +nightly -vV | sed -n 's/^host: //p')/release/$target"
    cover="$(mktemp -d)"
    "$binary" -set_cover_merge=1 -use_counters=0 "$cover" "corpus/$target" >/dev/null 2>&1
    find "corpus/$target" -type f -delete
    cp "$cover"/. "$keep"/. "corpus/$target/" -r
    rm -rf "$keep" "$cover"
    after=$(find "corpus/$target" -type f | wc -l)
    echo "== $target: corpus $before -> $after files"
done
