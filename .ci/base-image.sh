#!/usr/bin/env bash
# Builds (once) a Debian bookworm image from Debian's packages alone, with no image registry:
# debootstrap into a folder, imported as an image, then Python 3.11, make and Chromium on top.
#   bash .ci/base-image.sh        -> prints the image's name (classrec-ci-base:bookworm-N)
# Also the PYTHON_IMAGE for the Dockerfile (it has `python` and `python -m venv`).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/engine.sh"
ci_engine || { echo "ci: $CI_ENGINE_WHY" >&2; exit 1; }
# The tag changes with this file's package list and the apt sources, so an edit builds a new image.
tag=$({ cat "$here/base-image.sh" "$here/Dockerfile.base"
  cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null || true; } | sha256sum | cut -c1-12)
image="classrec-ci-base:bookworm-$tag"
if "$DOCKER" image inspect "$image" >/dev/null 2>&1; then echo "$image"; exit 0; fi

root_image="classrec-ci-debootstrap:bookworm"
if ! "$DOCKER" image inspect "$root_image" >/dev/null 2>&1; then
  command -v debootstrap >/dev/null 2>&1 \
    || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null)
  # The machine's own Debian mirror, as apt is configured here (deb822 or one-line sources).
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$mirror" ] || { echo "ci: no Debian mirror in the apt sources" >&2; exit 1; }
  rootfs=$(mktemp -d /tmp/ci-rootfs.XXXXXX)
  trap 'rm -rf "$rootfs"' EXIT
  echo "ci: debootstrap bookworm from $mirror" >&2
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >&2
  tar -C "$rootfs" -c . | "$DOCKER" import - "$root_image" >/dev/null
fi
# The image's apt sees the archive as the machine's apt does (all suites: updates and security too;
# debootstrap alone knows only the release, whose Chromium is months older).
context=$(mktemp -d /tmp/ci-context.XXXXXX)
mkdir -p "$context/sources.list.d"
cp /etc/apt/sources.list.d/*.sources "$context/sources.list.d/" 2>/dev/null || true
[ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$context/sources.list" || : >"$context/sources.list"
cp "$here/Dockerfile.base" "$context/"
"$DOCKER" build --network host -q -t "$image" --build-arg BASE="$root_image" -f "$context/Dockerfile.base" "$context" >&2
rm -rf "$context"
echo "$image"
