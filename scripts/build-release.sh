#!/usr/bin/env bash
# Release binaries as the images ship them: Swift runtime linked statically, every module compiled
# with function sections so the linker can lay out start-up code from scripts/startup.order, C at
# -O3 (the encoder's kernels). These flags are the build's, not Package.swift's: unsafe flags in a
# manifest stop the package being taken by version (scripts/check-consumer.sh).
# Usage: scripts/build-release.sh PRODUCT... (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH"
products=("$@")
[ ${#products[@]} -gt 0 ] || products=(echo memory mock-platform vector-bench)
# The link (docs/architecture.md, "Resident memory"): lld with packed relative relocations (PIE
# kept, 12 kB of relocations instead of 1.5 MB), no exported symbols (the loader never searches
# them), identical functions folded into one (specializations and thunks repeat: 1.6 MB of echo's
# 23; nothing here compares function addresses), and the functions that start-up and an idle worker
# run laid out together, so they fault in as a few pages instead of hundreds of scattered ones.
linking=(-Xswiftc -use-ld=lld -Xlinker -z -Xlinker pack-relative-relocs -Xlinker --no-export-dynamic -Xlinker --icf=all
    -Xlinker "--symbol-ordering-file=$PWD/scripts/startup.order" -Xlinker --no-warn-symbol-ordering)
for product in "${products[@]}"; do
    swift build -c release --static-swift-stdlib -Xswiftc -Xfrontend -Xswiftc -function-sections -Xcc -O3 "${linking[@]}" \
        --scratch-path .build-release --product "$product"
done
