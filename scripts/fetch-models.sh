#!/usr/bin/env bash
# Puts the base models into models/ (from ../shared/models when present, else their public upstream
# address), checks their sha256, and derives the draft models with configspec-edge's own quantize command,
# checking that each derived file has the published sha256. Safe to run again.
# Usage: scripts/fetch-models.sh   (CONFIGSPEC_EDGE may name the configspec-edge command to use)
source "$(dirname "$0")/lib/common.sh"

MODELS="$ROOT/models"
mkdir -p "$MODELS"

# name | sha256 | upstream address
BASES=(
  "stories260K.gguf|270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d|https://huggingface.co/ggml-org/models/resolve/main/tinyllamas/stories260K.gguf"
  "llama-2-tiny-random.gguf|81f226c62d28ed4a1a9b9fa080fcd9f0cc40e0f9d5680036583ff98fbcd035cb|https://huggingface.co/aladar/llama-2-tiny-random-GGUF/resolve/main/llama-2-tiny-random.gguf"
)
# name | type | pruned layers | sha256
DRAFTS=(
  "stories260K-Q8_0.gguf|Q8_0||ff8701a45da28293b7af11a695ab33575b692e9b109a2eae6238c906c31415da"
  "stories260K-Q4_K_M.gguf|Q4_K_M||7f61512f1889080c73b2afd3ac7fdfe55a368e83570b20e5019829adfa734a2a"
  "stories260K-Q4_0.gguf|Q4_0||fd93abd9957992763c863e7e3f30934baf1e7a2e31b6c911a720cd109daed40d"
  "stories260K-prune4-F32.gguf|F32|4|532060d8d9d0f4fe9d726217f841914ef5e8b54e148d79e4f9a1c9d4bbfe677a"
  "stories260K-prune1234-F32.gguf|F32|1,2,3,4|6053f6f5d76e12aaec910b277040830aa3a48fce8a02639dfd892eb8d857d874"
)

have() { [ -f "$1" ] && [ "$(sha256_of "$1")" = "$2" ]; }

for entry in "${BASES[@]}"; do
  IFS='|' read -r name sha url <<<"$entry"
  have "$MODELS/$name" "$sha" && continue
  if [ -f "$SHARED_MODELS/$name" ]; then
    cp "$SHARED_MODELS/$name" "$MODELS/$name.partial" && chmod 644 "$MODELS/$name.partial"
  else
    command -v curl >/dev/null || ensure_apt curl ca-certificates
    log "downloading $name"
    curl -fsSL --retry 3 -o "$MODELS/$name.partial" "$url" || die "could not download $name from $url"
  fi
  verify_sha256 "$MODELS/$name.partial" "$sha"
  mv "$MODELS/$name.partial" "$MODELS/$name"
done

edge_command() {
  if [ -n "${CONFIGSPEC_EDGE:-}" ]; then echo "$CONFIGSPEC_EDGE"; return; fi
  if [ -x "$ROOT/out/bin/configspec-edge" ]; then echo "$ROOT/out/bin/configspec-edge"; return; fi
  # The target framework comes from Directory.Build.props, so the path follows it when it moves.
  local tfm dll
  tfm="$(sed -n 's:.*<ProductTargetFramework>\(.*\)</ProductTargetFramework>.*:\1:p' "$ROOT/Directory.Build.props")"
  [ -n "$tfm" ] || die "no ProductTargetFramework in Directory.Build.props"
  dll="$ROOT/src/ConfigSpec.Edge/bin/Release/$tfm/configspec-edge.dll"
  if [ ! -f "$dll" ]; then
    ensure_dotnet
    log "building configspec-edge"
    dotnet build "$ROOT/src/ConfigSpec.Edge" -c Release -v quiet -nologo >/dev/null
  fi
  [ -f "$dll" ] || die "configspec-edge was built but $dll is not there"
  echo "dotnet $dll --llama-dir $ROOT/lib/llama/$(host_platform)"
}

EDGE=""
for entry in "${DRAFTS[@]}"; do
  IFS='|' read -r name type prune sha <<<"$entry"
  have "$MODELS/$name" "$sha" && continue
  [ -n "$EDGE" ] || EDGE="$(edge_command)"
  log "deriving $name ($type${prune:+, pruned layers $prune})"
  $EDGE model quantize --in "$MODELS/stories260K.gguf" --out "$MODELS/$name" --type "$type" ${prune:+--prune-layers "$prune"} >/dev/null
  verify_sha256 "$MODELS/$name" "$sha"
done
log "models ready in models/"
