#!/usr/bin/env bash
# Takes this package as a user's package does: by version, from a git repository, with every library
# product in one executable that it builds and runs. SwiftPM refuses packages taken by version whose
# targets carry unsafe flags (`-O3`, linker flags) before compiling anything, which a path dependency
# (Examples/queue-worker) never shows; this is the check that does.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH"

work=.build/consumer
repository="$PWD/$work/swift-worker-runtime.git"
# A new consumer each run: a kept one remembers the snapshot's previous commits.
rm -rf "$work"
mkdir -p "$repository" "$work/app/Sources/App"
# The working tree as it is (tracked and new files, not ignored ones), committed and tagged.
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' file; do
    [ -e "$file" ] && printf '%s\0' "$file"
done | xargs -0 cp --parents -t "$repository"
git -C "$repository" init -q
git -C "$repository" add -A
git -C "$repository" -c user.name=check -c user.email=check@localhost commit -qm "snapshot"
# A new version each run, so no cached clone holds an older commit under the same tag.
version="1.0.$(date +%s)"
git -C "$repository" tag "$version"
# SwiftPM lets local packages (a path, a file:// URL) carry unsafe flags and refuses them only in
# remote ones: the dependency is named by an https URL that git maps onto the snapshot.
export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0="url.$PWD/$work/.insteadOf" GIT_CONFIG_VALUE_0="https://consumer-check.invalid/"

# Every library product the manifest declares.
mapfile -t products < <(swift package dump-package | python3 -c '
import json, sys
for product in json.load(sys.stdin)["products"]:
    if "library" in product["type"]:
        print(product["name"])')
[ ${#products[@]} -ge 10 ] || { echo "check-consumer: found only ${#products[@]} library products" >&2; exit 1; }

dependencies=$(printf '                .product(name: "%s", package: "swift-worker-runtime"),\n' "${products[@]}")
cat > "$work/app/Package.swift" <<SWIFT
// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "app",
    platforms: [.macOS(.v15)],
    dependencies: [.package(url: "https://consumer-check.invalid/swift-worker-runtime.git", exact: "$version")],
    targets: [
        .executableTarget(
            name: "App",
            dependencies: [
$dependencies
            ]),
    ]
)
SWIFT
{
    printf 'import %s\n' "${products[@]}"
    cat <<'SWIFT'

// A queue worker on the public API: builds, links every product, answers one job.
struct Doubler: JobHandler {
    func handle(_ input: [Int], context: JobContext) async throws -> [Int] { input.map { $0 * 2 } }
}
WorkerRuntime(handler: Doubler(), options: WorkerOptions(name: "app")).runAndExit()
SWIFT
} > "$work/app/Sources/App/main.swift"

if ! swift build --package-path "$work/app" > "$work/build.log" 2>&1; then
    grep -E "error|unsafe" "$work/build.log" | head -20 >&2
    echo "check-consumer: a package taking this one by version does not build (log: $work/build.log)" >&2
    exit 1
fi
output=$("$(swift build --package-path "$work/app" --show-bin-path)/App" --test-input '{"input": [1, 2, 3]}' 2>/dev/null)
grep -q '\[2,4,6\]' <<< "$output" || { echo "check-consumer: the consumer built but did not answer its job: $output" >&2; exit 1; }
echo "consumer by version: builds with ${#products[@]} library products (${products[*]}) and answers a job"
