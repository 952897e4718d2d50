#!/usr/bin/env bash
# Proves the Dockerfiles on a machine without Docker. For each handler (default: every
# Dockerfiles/<handler>.Dockerfile):
# 1. builds its release binary as the build stage does (scripts/build-release.sh, stripped);
# 2. builds the run stage's root filesystem: debootstrap --variant=minbase bookworm (cached in
#    .build/images) plus exactly the Dockerfile's run-stage packages (its ARG PACKAGES), the
#    non-root user, the binary, the CA bundle (and, for memory, the model) where the Dockerfile
#    copies them;
# 3. checks that the binary finds every library it links inside that root, each from a package;
# 4. inside it (chroot, as the image's user, from its WORKDIR): runs --test-input, then starts
#    --local and expects 200 from /ping, the Dockerfile's HEALTHCHECK to pass and a COMPLETED /runsync;
# 5. prints each image's size (root filesystem plus copied files), beside the same measure for the
#    equivalent Python worker image (Debian's python3 + pip install runpod==1.12.0 in the same root).
# Needs root (debootstrap, chroot, mount). Usage: scripts/check-images.sh [HANDLER...]
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH"
[ "$(id -u)" -eq 0 ] || { echo "check-images: run as root (debootstrap and chroot need it)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "check-images: debootstrap is missing (scripts/install-deps.sh --test installs it)" >&2; exit 1; }

handlers=("$@")
if [ ${#handlers[@]} -eq 0 ]; then
    for file in Dockerfiles/*.Dockerfile; do handlers+=("$(basename "$file" .Dockerfile)"); done
fi
cache=.build/images
mkdir -p "$cache"
base="$cache/bookworm-minbase.tar"
if [ ! -f "$base" ]; then
    rm -rf "$cache/base"
    debootstrap --variant=minbase bookworm "$cache/base" http://deb.debian.org/debian >"$cache/debootstrap.log" 2>&1 \
        || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
    # What makes debian:bookworm-slim slim (debuerreotype --slimify): no documentation, manuals or
    # translations, now or from packages installed later.
    cat >"$cache/base/etc/dpkg/dpkg.cfg.d/docker" <<'SLIM'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
SLIM
    find "$cache/base/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    rm -rf "$cache/base"/usr/share/{groff,info,linda,lintian/overrides,locale,man}/*
    chroot "$cache/base" apt-get clean
    rm -rf "$cache/base"/var/lib/apt/lists/*
    tar -C "$cache/base" -cf "$base.partial" . && mv "$base.partial" "$base"
    rm -rf "$cache/base"
fi

# fake-upstream stands in for Context7; echo is the gateway's upstream.
bash scripts/build-release.sh "${handlers[@]}" fake-upstream echo >"$cache/build.log" 2>&1 || { tail -30 "$cache/build.log" >&2; exit 1; }
release=.build-release/release

mounted=()
cleanup() {
    for point in "${mounted[@]}"; do umount -l "$point" 2>/dev/null || true; done
    [ -n "${fake_pid:-}" ] && kill "$fake_pid" 2>/dev/null || true
    [ -n "${upstream_pid:-}" ] && kill "$upstream_pid" 2>/dev/null || true
    [ -n "${worker_pid:-}" ] && kill "$worker_pid" 2>/dev/null || true
    [ -n "${tls_pid:-}" ] && kill "$tls_pid" 2>/dev/null || true
}
trap cleanup EXIT

# A root filesystem from the cached minbase with `packages` installed, apt's lists and caches gone.
# With EXCLUDE set, dpkg leaves out the paths that file names (copied where the Dockerfile copies it).
make_root() {
    local root=$1; shift
    rm -rf "$root" && mkdir -p "$root" && tar -C "$root" -xf "$base"
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    [ -z "${EXCLUDE:-}" ] || cp "$EXCLUDE" "$root/etc/dpkg/dpkg.cfg.d/worker-exclude-unused"
    chroot "$root" apt-get update -qq >/dev/null
    chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
    chroot "$root" apt-get clean
    rm -rf "$root"/var/lib/apt/lists/*
}

size_of() { du -sb --exclude=proc --exclude=dev "$1" | cut -f1; }
megabytes() { awk -v bytes="$1" 'BEGIN { printf "%.1f", bytes / 1000000 }'; }

# The fake Context7 the context7 image is pointed at (the chroot shares the host's network).
"$release/fake-upstream" context7 --port 0 >"$cache/fake.log" 2>&1 &
fake_pid=$!
for _ in $(seq 100); do grep -q "listening on" "$cache/fake.log" && break; sleep 0.1; done
fake_port=$(sed -n 's/.*listening on \([0-9]*\).*/\1/p' "$cache/fake.log")
# The port a worker started with --port 0 serves on, from its log (empty if it says none in $2 tenths of a second).
served_port() {
    local port=""
    for _ in $(seq "$2"); do
        port=$(grep "Serving" "$1" | grep -o 'http://[0-9.]*:[0-9]*' | head -1 | sed 's/.*://') && [ -n "$port" ] && break
        sleep 0.1
    done
    echo "$port"
}
# The echo the gateway image forwards its jobs to (on the host: the chroot shares its network).
"$release/echo" --local --port 0 >"$cache/upstream.log" 2>&1 &
upstream_pid=$!
upstream_port=$(served_port "$cache/upstream.log" 100)
[ -n "$upstream_port" ] || { echo "check-images: the gateway's upstream echo did not start:" >&2; tail -5 "$cache/upstream.log" >&2; exit 1; }
gateway_config="{\"upstreams\": [{\"name\": \"echo\", \"url\": \"http://127.0.0.1:$upstream_port/v2/echo\"}]}"

test_input() {
    case $1 in
        echo) echo '{"input": {"hello": "image"}}' ;;
        memory) echo '{"input": {"action": "embed", "texts": ["a car", "an automobile"]}}' ;;
        context7) echo '{"input": {"action": "get_docs", "library_id": "/acme/widgets", "query": "install"}}' ;;
        orchestrator) echo '{"input": {"action": "process_lead", "lead_data": {"id": "image-1", "title": "CTO", "company_size": 300, "industry": "Software"}}}' ;;
        gateway) echo '{"input": {"hello": "through the gateway"}}' ;;
        *) echo '{"input": {}}' ;;
    esac
}

sizes=()
for handler in "${handlers[@]}"; do
    dockerfile="Dockerfiles/$handler.Dockerfile"
    [ -f "$dockerfile" ] || { echo "check-images: no $dockerfile" >&2; exit 1; }
    packages=$(sed -n 's/^ARG PACKAGES="\(.*\)"$/\1/p' "$dockerfile")
    [ -n "$packages" ] || { echo "check-images: $dockerfile has no ARG PACKAGES=\"…\" line" >&2; exit 1; }
    exclude=Dockerfiles/dpkg-exclude-unused
    grep -qx "COPY $exclude /etc/dpkg/dpkg.cfg.d/worker-exclude-unused" "$dockerfile" \
        || { echo "check-images: $dockerfile does not copy $exclude into /etc/dpkg/dpkg.cfg.d before installing" >&2; exit 1; }
    root="$cache/$handler-root"
    # shellcheck disable=SC2086
    EXCLUDE=$exclude make_root "$root" $packages
    chroot "$root" useradd --system --uid 10001 --user-group --home-dir /var/lib/worker --create-home --shell /usr/sbin/nologin worker
    strip -o "$root/usr/local/bin/$handler" "$release/$handler"
    # The CA bundle alone, copied as the Dockerfile copies its build stage's (Debian's, as here), at
    # the path libcurl reads and the one SSL_CERT_FILE names for OpenSSL.
    bundle=/etc/ssl/certs/ca-certificates.crt
    grep -qx "COPY --from=build $bundle $bundle" "$dockerfile" && grep -qx "ENV SSL_CERT_FILE=$bundle" "$dockerfile" \
        || { echo "check-images: $dockerfile does not copy the CA bundle to $bundle and name it in SSL_CERT_FILE" >&2; exit 1; }
    [ "$(curl-config --ca)" = "$bundle" ] || { echo "check-images: libcurl reads CA certificates from $(curl-config --ca), not $bundle" >&2; exit 1; }
    mkdir -p "$root/etc/ssl/certs" && cp "$bundle" "$root$bundle"
    if grep -q "/opt/models/all-MiniLM-L6-v2" "$dockerfile"; then
        model=$(bash scripts/fetch-model.sh)
        mkdir -p "$root/opt/models" && cp -a "$model" "$root/opt/models/all-MiniLM-L6-v2"
    fi

    # dpkg honoured the exclusions: nothing they name is in the root.
    while read -r pattern; do
        if found=$(compgen -G "$root$pattern"); then
            echo "check-images: $handler's root has files $exclude excludes:" >&2; echo "$found" >&2; exit 1
        fi
    done < <(sed -n 's/^path-exclude //p' "$exclude")
    # Every library the binary links resolves inside the root, to a file a package installed.
    links=$(chroot "$root" ldd "/usr/local/bin/$handler")
    if grep -q "not found" <<<"$links"; then
        echo "check-images: $handler links libraries $dockerfile does not install:" >&2
        grep "not found" <<<"$links" >&2
        exit 1
    fi
    for library in $(awk '$2 == "=>" {print $3}' <<<"$links"); do
        real=$(chroot "$root" readlink -f "$library")
        chroot "$root" dpkg -S "$real" >/dev/null 2>&1 || chroot "$root" dpkg -S "$library" >/dev/null 2>&1 || {
            echo "check-images: $handler's $library is in no package of its image" >&2
            exit 1
        }
    done

    # Without /proc the Swift runtime cannot run (libdispatch's pool stops the process with SIGILL
    # when it cannot read /proc/<thread>/stat; the command line comes from /proc/self/cmdline): the
    # worker must refuse to start, saying why, every time, not crash at a random moment.
    status=0
    output=$(timeout 60 chroot --userspec=10001:10001 "$root" env -i HOME=/var/lib/worker "/usr/local/bin/$handler" --test-input '{"input": {}}' 2>&1 </dev/null) || status=$?
    grep -q "^Worker start-up failed: /proc is not mounted" <<<"$output" && [ "$status" -eq 1 ] \
        || { echo "check-images: $handler without /proc did not refuse to start with exit status 1 (status $status):" >&2; echo "$output" | tail -5 >&2; exit 1; }
    mount -t proc proc "$root/proc" && mounted+=("$root/proc")
    run_as_worker() { chroot --userspec=10001:10001 "$root" env -i HOME=/var/lib/worker PATH=/usr/local/bin:/usr/bin:/bin \
        OPENBLAS_NUM_THREADS=1 SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt CONTEXT7_BASE_URL="http://127.0.0.1:$fake_port" \
        GATEWAY_CONFIG_JSON="$gateway_config" sh -c "cd /var/lib/worker && exec $*"; }
    # --test-input in the image: it must exit 0 with an output. Arguments are extra NAME=value settings.
    test_input_in_image() {
        local output
        output=$(run_as_worker env "$@" "/usr/local/bin/$handler" --test-input "'$(test_input "$handler")'" 2>&1) \
            && grep -q '^Job result: {"output"' <<<"$output" \
            || { echo "check-images: $handler --test-input failed in its image${*:+ with $*}:" >&2; echo "$output" | tail -20 >&2; exit 1; }
    }
    test_input_in_image

    if [ "$handler" = context7 ]; then
        # HTTPS from inside the image (libcurl on OpenSSL, without what dpkg-exclude-unused leaves
        # out): a local TLS server whose certificate the root's bundle trusts for this check only.
        openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
            -keyout "$cache/tls.key" -out "$cache/tls.crt" 2>/dev/null
        cat "$cache/tls.crt" >>"$root$bundle"
        openssl s_server -accept 127.0.0.1:0 -cert "$cache/tls.crt" -key "$cache/tls.key" -www >"$cache/tls.log" 2>&1 &
        tls_pid=$!
        for _ in $(seq 100); do grep -q "^ACCEPT" "$cache/tls.log" && break; sleep 0.1; done
        tls_port=$(sed -n 's/^ACCEPT 127.0.0.1:\([0-9]*\)$/\1/p' "$cache/tls.log")
        test_input_in_image CONTEXT7_BASE_URL="https://127.0.0.1:$tls_port"
        kill "$tls_pid" 2>/dev/null; wait "$tls_pid" 2>/dev/null || true
        tls_pid=""
        cp "$bundle" "$root$bundle"
    fi

    log="$cache/$handler-local.log"
    run_as_worker "/usr/local/bin/$handler" --local --port 0 >"$log" 2>&1 &
    worker_pid=$!
    port=$(served_port "$log" 300)
    [ -n "$port" ] || { echo "check-images: $handler --local did not start in its image:" >&2; tail -20 "$log" >&2; exit 1; }
    ping=""
    for _ in $(seq 100); do
        ping=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/ping" || true)
        [ "$ping" = 200 ] && break
        sleep 0.1
    done
    [ "$ping" = 200 ] || { echo "check-images: $handler /ping answered '$ping' in its image" >&2; exit 1; }
    # The Dockerfile's HEALTHCHECK, as Docker would run it in the image.
    mapfile -t healthcheck < <(python3 -c 'import json, sys
text = open(sys.argv[1]).read().replace("\\\n", " ")
line = next(l for l in text.splitlines() if l.startswith("HEALTHCHECK"))
print("\n".join(json.loads(line.split("CMD", 1)[1].strip())))' "$dockerfile")
    chroot --userspec=10001:10001 "$root" env -i PATH=/usr/bin:/bin PORT="$port" "${healthcheck[@]}" \
        || { echo "check-images: $handler's HEALTHCHECK failed in its image" >&2; exit 1; }
    # A queue worker (no PORT, no PORT_HEALTH) listens nowhere: its HEALTHCHECK must pass all the same.
    chroot --userspec=10001:10001 "$root" env -i PATH=/usr/bin:/bin "${healthcheck[@]}" \
        || { echo "check-images: $handler's HEALTHCHECK fails for a queue worker (no PORT set)" >&2; exit 1; }
    answer=$(curl -s -XPOST "http://127.0.0.1:$port/runsync" -H 'Content-Type: application/json' -d "$(test_input "$handler")")
    grep -q '"status":"COMPLETED"' <<<"$answer" || { echo "check-images: $handler /runsync in its image: $answer" >&2; exit 1; }
    kill "$worker_pid" && wait "$worker_pid" 2>/dev/null || true
    worker_pid=""
    umount -l "$root/proc"

    size=$(size_of "$root")
    sizes+=("$handler $size")
    echo "image $handler: links resolve in its root; --test-input, /ping, the HEALTHCHECK and /runsync answer as user worker; $(megabytes "$size") MB"
done

# The Python worker image the same way: Debian's python3 and runpod==1.12.0 in a venv.
python_root="$cache/python-root"
python_size_file="$cache/python-size"
if [ ! -f "$python_size_file" ]; then
    make_root "$python_root" ca-certificates python3 python3-venv
    chroot "$python_root" python3 -m venv /opt/venv
    # This machine's CA bundle for PyPI (behind a proxy here), removed before measuring.
    cp /etc/ssl/certs/ca-certificates.crt "$python_root/tmp/host-ca.crt"
    chroot "$python_root" env -i PATH=/usr/bin:/bin PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_CERT=/tmp/host-ca.crt SSL_CERT_FILE=/tmp/host-ca.crt \
        REQUESTS_CA_BUNDLE=/tmp/host-ca.crt /opt/venv/bin/pip install -q --no-cache-dir runpod==1.12.0 >/dev/null
    rm -f "$python_root/tmp/host-ca.crt"
    chroot "$python_root" /opt/venv/bin/python -c "import runpod; assert runpod.__version__ == '1.12.0'"
    size_of "$python_root" >"$python_size_file"
    rm -rf "$python_root"
fi
python_size=$(cat "$python_size_file")
echo
echo "| image | size | vs the Python worker image |"
echo "|---|---:|---:|"
for entry in "${sizes[@]}"; do
    read -r name size <<<"$entry"
    echo "| $name | $(megabytes "$size") MB | $(awk -v a="$size" -v b="$python_size" 'BEGIN { printf "%.3f", a / b }') |"
done
echo "| Python worker (python3 + runpod 1.12.0) | $(megabytes "$python_size") MB | 1.000 |"
