#!/usr/bin/env bash
# Re-vendor HTMX from the npm package htmx.org at the pinned version (no CDN, no build step).
set -euo pipefail
VERSION=4.0.1
cd "$(dirname "$0")/.."
dest=sec1000_addon/sec1000/web/static/vendor/htmx
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack "htmx.org@${VERSION}" --silent >/dev/null && tar xzf "htmx.org-${VERSION}.tgz")
mkdir -p "$dest"
cp "$work/package/dist/htmx.min.js" "$dest/htmx.min.js"
cp "$work/package/LICENSE" "$dest/LICENSE"
echo "htmx.org ${VERSION} (npm)" > "$dest/VERSION"
echo "vendored htmx.org ${VERSION} into $dest"
