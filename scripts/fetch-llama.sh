#!/usr/bin/env bash
# Fetches the pinned prebuilt llama.cpp libraries (npm @node-llama-cpp/<platform>@3.22.1) into lib/llama/<platform>/.
# Usage: scripts/fetch-llama.sh [platform ...]   (default: this machine's; also linux-arm64, linux-x64-cuda)
# Safe to run again: a verified folder is left alone.
source "$(dirname "$0")/lib/common.sh"

VERSION=3.22.1
declare -A SHA256=(
  [linux-x64]=0d953e1503d5ab4608d8ed5b739132308c81ac05ffeb760d2a7f30e08a9f90e0
  [linux-arm64]=39c76b998e35ed2f236c01472fc79eda0fc558b1c8b535023c2d7ded8c327cc4
  [linux-x64-cuda]=d6cd3ff39a43b024816952e0bc6452d6711608d26256ff6eb0fe8cf7ff55bb2c
)

fetch_one() {
  local platform="$1" dest="$ROOT/lib/llama/$1"
  [ -n "${SHA256[$platform]:-}" ] || die "unknown llama.cpp platform '$platform' (known: ${!SHA256[*]})"
  if [ -f "$dest/.verified" ] && [ "$(cat "$dest/.verified")" = "${SHA256[$platform]}" ]; then
    return 0
  fi
  command -v npm >/dev/null || ensure_apt npm
  local work
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' RETURN
  log "fetching @node-llama-cpp/$platform@$VERSION"
  (cd "$work" && npm pack --silent "@node-llama-cpp/$platform@$VERSION" >/dev/null)
  local tgz="$work/node-llama-cpp-$platform-$VERSION.tgz"
  verify_sha256 "$tgz" "${SHA256[$platform]}"
  tar xzf "$tgz" -C "$work"
  local bins="$work/package/bins/$platform"
  [ -d "$bins" ] || die "package @node-llama-cpp/$platform@$VERSION has no bins/$platform folder"
  rm -rf "$dest" && mkdir -p "$dest"
  cp "$bins"/*.so "$dest"/
  echo "${SHA256[$platform]}" > "$dest/.verified"
  log "llama.cpp $platform libraries in lib/llama/$platform"
}

platforms=("$@")
[ ${#platforms[@]} -gt 0 ] || platforms=("$(host_platform)")
for p in "${platforms[@]}"; do fetch_one "$p"; done
