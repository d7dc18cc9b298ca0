#!/usr/bin/env bash
# Build a CPython with pyenv from Debian's source package of the same version, for a Python
# that pyenv cannot download here (python.org is out of reach; Debian's archive is not).
#   scripts/python_from_debian.sh 3.13.5      prints the interpreter's path when done
# Debian's python3.13_3.13.5.orig.tar.xz is byte for byte python.org's Python-3.13.5.tar.xz:
# the sha256 pyenv's own 3.13.5 definition expects. The machine's apt sources stay untouched:
# apt reads a private source list and keeps its lists under .cache/debian-python/.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=${1:?usage: $0 VERSION}
case "$VERSION" in
  3.13.5)
    SUITE=trixie PACKAGE=python3.13
    SHA256=93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640
    ;;
  *) echo "no Debian source known for Python $VERSION" >&2; exit 2 ;;
esac
BUILD_DEPS=(build-essential libssl-dev libffi-dev zlib1g-dev libsqlite3-dev libbz2-dev
  liblzma-dev libreadline-dev uuid-dev libncurses-dev tk-dev xz-utils)
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
PYENV_ROOT=$(pyenv root)
PYTHON="$PYENV_ROOT/versions/$VERSION/bin/python${VERSION%.*}"
WORK=$PWD/.cache/debian-python

# The Debian archive this machine already uses (a URI ending in /debian), else Debian's own.
debian_mirror() {
  local files=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources)
  local uri
  uri=$(cat "${files[@]}" 2>/dev/null \
    | sed -n -e 's/^[[:space:]]*URIs:[[:space:]]*//p' -e 's/^[[:space:]]*deb\(-src\)\{0,1\}[[:space:]]\{1,\}\(\[[^]]*\][[:space:]]\{1,\}\)\{0,1\}//p' \
    | tr ' ' '\n' | grep -E '^https?://[^ ]+/debian/?$' | head -n 1 || true)
  uri=${uri:-http://deb.debian.org/debian}
  echo "${uri%/}"
}

apt_private() {
  local sandbox=()
  # As root, apt hands downloads to its _apt user, which cannot write into our folder.
  [ "$(id -u)" -eq 0 ] && sandbox=(-o APT::Sandbox::User=root)
  apt-get -q -o Dir::Etc::SourceList="$WORK/sources.list" -o Dir::Etc::SourceParts=/dev/null \
    -o Dir::State::Lists="$WORK/lists" -o Dir::Cache="$WORK/apt-cache" "${sandbox[@]}" "$@"
}

fetch_source() {
  local tarball="$PYENV_ROOT/cache/Python-$VERSION.tar.xz"
  if [ -f "$tarball" ] && echo "$SHA256  $tarball" | sha256sum --check --status; then
    return
  fi
  mkdir -p "$WORK/lists/partial" "$WORK/apt-cache/archives/partial" "$WORK/source" "$PYENV_ROOT/cache"
  echo "deb-src [signed-by=$KEYRING] $(debian_mirror) $SUITE main" > "$WORK/sources.list"
  apt_private update >/dev/null
  (cd "$WORK/source" && apt_private source --download-only "$PACKAGE" >/dev/null)
  local orig="$WORK/source/${PACKAGE}_$VERSION.orig.tar.xz"
  if ! echo "$SHA256  $orig" | sha256sum --check --status; then
    echo "$orig is not Python $VERSION's release tarball (sha256 differs)" >&2
    exit 1
  fi
  cp "$orig" "$tarball"
}

install_build_deps() {
  local missing=() pkg
  for pkg in "${BUILD_DEPS[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

works() { "$PYTHON" -c 'import ssl, sqlite3, lzma, bz2, ctypes, uuid' >/dev/null 2>&1; }

if ! works; then
  mkdir -p "$WORK"
  exec 9>"$WORK/build.lock"
  flock 9  # a parallel run builds; this one waits, then finds it built
  if ! works; then
    install_build_deps
    fetch_source
    started=$SECONDS
    pyenv install --force "$VERSION" >&2
    works || { echo "Python $VERSION was built but lacks a standard module" >&2; exit 1; }
    echo "$((SECONDS - started))" > "$WORK/build-seconds-$VERSION"
    echo "Python $VERSION built from Debian's source in $((SECONDS - started)) s" >&2
  fi
fi
echo "$PYTHON"
