#!/usr/bin/env bash
# Publishes the executables as native AOT into out/bin/ with the llama.cpp libraries beside them.
# Usage: scripts/build.sh [runtime]   (default: this machine's; linux-arm64 needs an arm64 machine or full NuGet access)
source "$(dirname "$0")/lib/common.sh"
ensure_dotnet
RUNTIME="${1:-$(host_rid)}"
PLATFORM="${LLAMA_PLATFORM:-$RUNTIME}"
# Native AOT links with the system toolchain.
command -v cc >/dev/null || ensure_apt build-essential
"$ROOT/scripts/fetch-llama.sh" "$PLATFORM"
log "publishing native AOT for $RUNTIME into out/bin/"
dotnet msbuild "$ROOT/scripts/publish.proj" -t:Publish -p:Runtime="$RUNTIME" -p:LlamaPlatform="$PLATFORM" -nologo -v:minimal
