#!/usr/bin/env bash
# Refresh tests/browser/vendor/axe-core/ from the npm registry at a pinned version: axe-core's
# minified build and its licences. Only the browser tests use it (tests/browser/test_accessibility.py
# injects it into the pages); the client never loads it.
# Usage: scripts/vendor-axe.sh            (from anywhere; needs npm and network to the registry)
set -euo pipefail

AXE_VERSION=4.14.1

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$here/tests/browser/vendor/axe-core"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$work"
npm pack --silent "axe-core@$AXE_VERSION" >/dev/null
mkdir axe
tar -xzf "axe-core-$AXE_VERSION.tgz" -C axe --strip-components=1

rm -rf "$dest"
mkdir -p "$dest"
cp axe/axe.min.js axe/LICENSE "$dest/"
if [[ -f axe/LICENSE-3RD-PARTY.txt ]]; then cp axe/LICENSE-3RD-PARTY.txt "$dest/"; fi
printf 'axe-core@%s from the npm registry (npm pack); refreshed by scripts/vendor-axe.sh\n' \
  "$AXE_VERSION" >"$dest/VERSION"

echo "vendored axe-core@$AXE_VERSION into $dest"
du -sh "$dest"
