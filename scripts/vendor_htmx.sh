#!/usr/bin/env bash
# Re-vendor HTMX from the npm package htmx.org at the pinned version (no CDN, no build step).
# npm checks the package's registry integrity; VERSION records the file's sha256 so a test can
# tell an edited copy from the published one.
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
sum=$(sha256sum "$dest/htmx.min.js" | cut -d' ' -f1)
printf 'htmx.org %s (npm)\nsha256 %s htmx.min.js\n' "$VERSION" "$sum" > "$dest/VERSION"
echo "vendored htmx.org ${VERSION} into $dest"
