#!/usr/bin/env bash
# Refresh clients/web/vendor/three/ from the npm registry at a pinned version: the minified module
# build and the addons the client imports, with three's LICENSE beside them. (MessagePack is a
# small codec of our own, clients/web/msgpack.js, so nothing else is vendored.)
# Usage: scripts/vendor-three.sh            (from anywhere; needs npm and network to the registry)
# The client has no build step: the browser loads these files through the import map in index.html.
set -euo pipefail

THREE_VERSION=0.170.0
ADDONS=(
  utils/BufferGeometryUtils.js
)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$here/clients/web/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$work"
npm pack --silent "three@$THREE_VERSION" >/dev/null
mkdir three
tar -xzf "three-$THREE_VERSION.tgz" -C three --strip-components=1

rm -rf "$dest/three"
mkdir -p "$dest/three/addons"

# three: the minified module build (and its core half where the version splits it)
for f in three.module.min.js three.core.min.js; do
  if [[ -f "three/build/$f" ]]; then cp "three/build/$f" "$dest/three/"; fi
done
for a in "${ADDONS[@]}"; do
  mkdir -p "$dest/three/addons/$(dirname "$a")"
  cp "three/examples/jsm/$a" "$dest/three/addons/$a"
done
cp three/LICENSE "$dest/three/LICENSE"
printf 'three@%s from the npm registry (npm pack); refreshed by scripts/vendor-three.sh\n' \
  "$THREE_VERSION" >"$dest/three/VERSION"

# precompressed siblings: aiohttp's static files serve foo.js.gz to browsers that accept gzip
find "$dest/three" -name '*.js' -size +16k -exec gzip -9 -k -n -f {} \;

echo "vendored three@$THREE_VERSION into $dest/three"
du -sh "$dest/three"
