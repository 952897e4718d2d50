#!/usr/bin/env bash
# Builds release binaries and the peers' Python environment, then runs a benchmark.
# Usage: benchmarks/run.sh worker|server|vector|memory|memory-100k|mcp|embeddings|context7|postgres|orchestrator|fleet|gateway|instructions
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --test
command -v wrk >/dev/null || { sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo; $sudo apt-get install -y -qq wrk; }
[ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH"
# Built as the images are (release, Swift runtime static, start-up code laid out together).
bash scripts/build-release.sh echo mock-platform vector-bench memory embedding-bench context7 fake-upstream redis-bench postgres-bench orchestrator gateway

venv=benchmarks/.venv
# LiteLLM's proxy (bench_gateway.py): litellm and the modules its proxy imports. litellm[proxy] itself does not
# install from PyPI: 1.110.2's extra needs litellm-proxy and litellm-proxy-extras 0.4.114.post1, which are not
# there, and the newest release whose extra resolves (1.108.x) wants huggingface-hub < 2, against transformers 5.
requirements="runpod==1.12.0 faiss-cpu numpy fastmcp==4.2.3 torch==2.13.0+cpu sentence-transformers==6.2.0 redis==6.4.0 celery[redis]==5.7.0 litellm==1.110.2 orjson==3.13.0 apscheduler==3.11.3 semver==3.2.0 expression==5.8.0 fastapi-sso==0.23.0 soundfile==0.14.0"
if [ "$(cat "$venv/requirements" 2>/dev/null)" != "$requirements" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q $requirements
    echo "$requirements" > "$venv/requirements"
fi
case "${1:-worker}" in
    worker) BENCH_PYTHON="$venv/bin/python" "$venv/bin/python" benchmarks/bench_worker.py ;;
    server) BENCH_PYTHON="$venv/bin/python" "$venv/bin/python" benchmarks/bench_server.py ;;
    vector) "$venv/bin/python" benchmarks/bench_vector.py ;;
    memory) "$venv/bin/python" benchmarks/bench_memory.py ;;
    memory-100k) BENCH_PART=vectors100k "$venv/bin/python" benchmarks/bench_memory.py ;;
    mcp) BENCH_PYTHON="$venv/bin/python" "$venv/bin/python" benchmarks/bench_mcp.py ;;
    embeddings)
        export EMBEDDINGS_MODEL_DIR="$(bash scripts/fetch-model.sh)"
        "$venv/bin/python" benchmarks/bench_embeddings.py ;;
    context7) BENCH_PYTHON="$venv/bin/python" "$venv/bin/python" benchmarks/bench_context7.py ;;
    postgres) "$venv/bin/python" benchmarks/bench_postgres.py ;;
    orchestrator) BENCH_PYTHON="$venv/bin/python" "$venv/bin/python" benchmarks/bench_orchestrator.py ;;
    fleet) BENCH_PYTHON="$venv/bin/python" "$venv/bin/python" benchmarks/bench_fleet.py ;;
    gateway) BENCH_PYTHON="$venv/bin/python" "$venv/bin/python" benchmarks/bench_gateway.py ;;
    instructions)
        command -v valgrind >/dev/null || { sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo; $sudo apt-get install -y -qq valgrind; }
        bash benchmarks/count_instructions.sh ;;
    *) echo "unknown benchmark: $1 (worker, server, vector, memory, memory-100k, mcp, embeddings, context7, postgres, orchestrator, fleet, gateway, instructions)" >&2; exit 2 ;;
esac
