#!/usr/bin/env bash
# Installs the system packages the workers build and run with, on Debian 12 (run as root).
# Swift 6.x must already be on PATH (the official toolchain, or /opt/swift on our machines).
set -euo pipefail

if [ -d /opt/swift/usr/bin ] && ! command -v swift >/dev/null 2>&1; then
    export PATH="/opt/swift/usr/bin:$PATH"
fi
command -v swift >/dev/null 2>&1 || { echo "swift not found: install a Swift 6 toolchain first" >&2; exit 1; }

packages=(libcurl4-openssl-dev libssl-dev libpq-dev libhiredis-dev libopenblas-dev pkg-config)
# `--test`: the servers and tools the test suite runs against as well (started by the tests themselves),
# and what scripts/check-images.sh builds image roots with.
if [ "${1:-}" = "--test" ]; then
    packages+=(redis-server redis-tools openssl postgresql debootstrap curl binutils)
fi
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
