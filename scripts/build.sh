#!/usr/bin/env bash
# Publishes the executables as native AOT with the llama.cpp libraries beside them (scripts/publish.proj).
# Usage: scripts/build.sh [RUNTIME] [--package]
#   scripts/build.sh                        this machine's build of every executable, into out/bin/
#   scripts/build.sh linux-arm64            the boards' build (Raspberry Pi 4B/5, Jetson) of configspec-edge, into
#                                           out/linux-arm64/; from an x86-64 machine it installs the cross toolchain
#   scripts/build.sh linux-arm64 --package  also out/configspec-edge-<version>-linux-arm64.tar.gz: the executable,
#                                           the libraries, hw/ and INSTALL; on the board: sudo ./hw/install-edge.sh
# Safe to run again. LLAMA_PLATFORM overrides the llama.cpp build copied (e.g. linux-x64-cuda).
source "$(dirname "$0")/lib/common.sh"
ensure_dotnet

RUNTIME="" PACKAGE=0
for arg in "$@"; do
  case "$arg" in
    --package) PACKAGE=1 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    -*) die "unknown option $arg (see scripts/build.sh --help)" ;;
    *) [ -z "$RUNTIME" ] || die "one runtime at a time (got $RUNTIME and $arg)"; RUNTIME="$arg" ;;
  esac
done
HOST="$(host_rid)"
RUNTIME="${RUNTIME:-$HOST}"
case "$RUNTIME" in
  linux-x64|linux-arm64) ;;
  *) die "unsupported runtime '$RUNTIME' (linux-x64 or linux-arm64; .NET native AOT has no 32-bit Arm Linux target)" ;;
esac
PLATFORM="${LLAMA_PLATFORM:-$RUNTIME}"

if [ "$RUNTIME" = "$HOST" ]; then
  OUT="$ROOT/out/bin"
  # Native AOT links with the system toolchain.
  command -v cc >/dev/null || ensure_apt build-essential
else
  OUT="$ROOT/out/$RUNTIME"
  ensure_cross_toolchain "$RUNTIME"
fi
"$ROOT/scripts/fetch-llama.sh" "$PLATFORM"
log "publishing native AOT for $RUNTIME into ${OUT#"$ROOT"/}/ (the first build takes a few minutes; later ones reuse it)"
STARTED=$SECONDS
# No MSBuild or compiler server outlives the build, so that stopping it (Ctrl-C, TERM) stops all of it.
export MSBUILDDISABLENODEREUSE=1 DOTNET_CLI_USE_MSBUILD_SERVER=0 UseSharedCompilation=false
run_step dotnet msbuild "$ROOT/scripts/publish.proj" -t:Publish -p:Runtime="$RUNTIME" -p:LlamaPlatform="$PLATFORM" \
  -p:OutputRoot="$OUT/" -nologo -v:minimal -nodeReuse:false
log "published in $((SECONDS - STARTED)) s"

[ "$PACKAGE" = 1 ] || exit 0

# --- the board tarball ---
VERSION="$(product_version)"
NAME="configspec-edge-$VERSION-$RUNTIME"
temp_dir STAGE
mkdir -p "$STAGE/$NAME"
# The executable and the libraries; symbols (.dbg, .pdb) stay in the build folder.
cp "$OUT/configspec-edge" "$OUT"/*.so "$STAGE/$NAME/"
cp -r "$ROOT/hw" "$STAGE/$NAME/hw"
sed -e "s/@VERSION@/$VERSION/g" -e "s/@RUNTIME@/$RUNTIME/g" "$ROOT/hw/INSTALL.in" > "$STAGE/$NAME/INSTALL"
rm -f "$STAGE/$NAME/hw/INSTALL.in"
# Reproducible: fixed owner, order and times.
TARBALL="$ROOT/out/$NAME.tar.gz"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 0)}" -C "$STAGE" -cf - "$NAME" | gzip -n -9 > "$TARBALL.partial"
mv "$TARBALL.partial" "$TARBALL"
log "board tarball: ${TARBALL#"$ROOT"/} ($(du -h "$TARBALL" | cut -f1)); on the board: tar xzf $NAME.tar.gz && sudo ./$NAME/hw/install-edge.sh"
