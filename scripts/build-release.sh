#!/usr/bin/env bash
# Release binaries as the images ship them: Swift runtime linked statically, every module compiled
# with function sections so the linker can lay out start-up code from scripts/startup.order (the
# handlers' link flags are in Package.swift). Usage: scripts/build-release.sh PRODUCT... (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH"
products=("$@")
[ ${#products[@]} -gt 0 ] || products=(echo memory mock-platform vector-bench)
for product in "${products[@]}"; do
    swift build -c release --static-swift-stdlib -Xswiftc -Xfrontend -Xswiftc -function-sections \
        --scratch-path .build-release --product "$product"
done
