#!/usr/bin/env bash
# The main job on embedded defaults: builds configspec-edge (native AOT), fetches the llama.cpp
# libraries and the small models, then runs a local speculative generation and prints the text,
# acceptance by draft position, and the speed against target-only decoding. Safe to run again.
# Usage: scripts/demo.sh [--draft NAME] [--k K] [--max-tokens N] [--prompt TEXT]
source "$(dirname "$0")/lib/common.sh"
DRAFT=stories260K-Q4_K_M.gguf K=4 MAX=200 PROMPT="Once upon a time"
while [ $# -gt 0 ]; do
  case "$1" in
    --draft) DRAFT="$2"; shift 2 ;;
    --k) K="$2"; shift 2 ;;
    --max-tokens) MAX="$2"; shift 2 ;;
    --prompt) PROMPT="$2"; shift 2 ;;
    *) die "unknown option $1 (see the header of scripts/demo.sh)" ;;
  esac
done

"$ROOT/scripts/build.sh"
CONFIGSPEC_EDGE="$ROOT/out/bin/configspec-edge" "$ROOT/scripts/fetch-models.sh"
EDGE="$ROOT/out/bin/configspec-edge"
M="$ROOT/models"

log "speculative generation: target stories260K.gguf, draft $DRAFT, K=$K"
"$EDGE" generate --target "$M/stories260K.gguf" --draft "$M/$DRAFT" --k "$K" --max-tokens "$MAX" \
  --prompt "$PROMPT" --compare-target

cat <<'NOTE'
(These toy drafts cost as much per token as the 260K-parameter target and verification is local, so
 speculation cannot win here; on a board the draft is far cheaper than a cloud target and each
 verification is a network round trip, which is what ConfigSpec's goodput model trades off.)
NOTE

log "acceptance of every shipped draft (K=8, greedy; '-' = position never reached)"
printf '%-32s %-46s %s\n' draft "acceptance by position" "mean accepted"
for d in stories260K-Q8_0.gguf stories260K-Q4_K_M.gguf stories260K-Q4_0.gguf stories260K-prune4-F32.gguf stories260K-prune1234-F32.gguf; do
  json="$("$EDGE" generate --target "$M/stories260K.gguf" --draft "$M/$d" --k 8 --max-tokens "$MAX" --prompt "$PROMPT" --json)"
  by=$(sed -n 's/.*"accepted_by_position":\[\([^]]*\)\].*/\1/p' <<<"$json" | tr ',' '\n' | awk '$1 == "null" {printf "  -  "; next} {printf "%.2f ", $1}')
  mean=$(sed -n 's/.*"mean_accepted":\([0-9.eE+-]*\).*/\1/p' <<<"$json")
  printf '%-32s %-46s %.2f\n' "$d" "$by" "$mean"
done
