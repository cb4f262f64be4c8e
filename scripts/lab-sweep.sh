#!/usr/bin/env bash
# A scripted lab measurement campaign: profiles a board's draft models (and quantisations derived from a base
# model) against one verifier and power source, then writes the selection for every objective and the HTML
# report into a dated folder. Safe to re-run: an interrupted campaign resumes its profile with --resume.
#
# Usage: scripts/lab-sweep.sh [options]
#   --verifier URL        remote verifier (mqtt://HOST:PORT); default: the target in this process
#   --target FILE         local target model (default: models/stories260K.gguf)
#   --target-id ID        remote target id (default: the --target file name)
#   --drafts LIST         comma-separated draft GGUF files (default: the shipped stories260K drafts)
#   --base FILE           derive drafts from this base model ...
#   --quants LIST         ... in these quantisations, e.g. Q4_0,Q4_K_M,Q8_0
#   --power SPEC          power source (default: auto = the board's sensor, else a labelled estimate)
#   --k-max N             longest block profiled (default 8)
#   --prompts FILE        Dolly-15K-style JSONL prompts (default: the built-in set)
#   --price-per-mtok P    verification price for the cost objective (default 0.10 USD per million)
#   --out DIR             campaign root (default: out/lab); results go to DIR/<device>-<date>/
#   --device-id ID        board id (default: the host name)
#   --quick               fewer rounds (a smoke run)
# Environment: CONFIGSPEC_EDGE (default out/bin/configspec-edge, built when missing).
source "$(dirname "$0")/lib/common.sh"
VERIFIER="" TARGET="" TARGET_ID="" DRAFTS="" BASE="" QUANTS="" POWER=auto KMAX=8 PROMPTS="" PRICE=0.10
OUT="$ROOT/out/lab" DEVICE="$(hostname)" QUICK=0
while [ $# -gt 0 ]; do
  case "$1" in
    --verifier) VERIFIER="$2"; shift 2 ;;
    --target) TARGET="$2"; shift 2 ;;
    --target-id) TARGET_ID="$2"; shift 2 ;;
    --drafts) DRAFTS="$2"; shift 2 ;;
    --base) BASE="$2"; shift 2 ;;
    --quants) QUANTS="$2"; shift 2 ;;
    --power) POWER="$2"; shift 2 ;;
    --k-max) KMAX="$2"; shift 2 ;;
    --prompts) PROMPTS="$2"; shift 2 ;;
    --price-per-mtok) PRICE="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --device-id) DEVICE="$2"; shift 2 ;;
    --quick) QUICK=1; shift ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) die "unknown option $1 (see scripts/lab-sweep.sh --help)" ;;
  esac
done

EDGE="${CONFIGSPEC_EDGE:-$ROOT/out/bin/configspec-edge}"
[ -x "$EDGE" ] || "$ROOT/scripts/build.sh" >/dev/null
M="$ROOT/models"
if [ -z "$DRAFTS" ] && [ -z "$BASE" ]; then
  CONFIGSPEC_EDGE="$EDGE" "$ROOT/scripts/fetch-models.sh" >/dev/null
  DRAFTS="$M/stories260K-Q8_0.gguf,$M/stories260K-Q4_K_M.gguf,$M/stories260K-Q4_0.gguf,$M/stories260K-prune4-F32.gguf"
fi
if [ -z "$VERIFIER" ] && [ -z "$TARGET" ]; then
  CONFIGSPEC_EDGE="$EDGE" "$ROOT/scripts/fetch-models.sh" >/dev/null
  TARGET="$M/stories260K.gguf"
fi

RUN="$OUT/$DEVICE-$(date -u +%Y%m%d)"
mkdir -p "$RUN"
log "campaign folder: $RUN"
args=(profile --out "$RUN/profile.json" --k-max "$KMAX" --power "$POWER" --device-id "$DEVICE")
[ -f "$RUN/profile.json" ] && args+=(--resume)
[ -n "$VERIFIER" ] && args+=(--verifier "$VERIFIER" --target-id "${TARGET_ID:-$(basename "${TARGET%.gguf}")}")
[ -z "$VERIFIER" ] && args+=(--target "$TARGET")
[ -n "$DRAFTS" ] && args+=(--drafts "$DRAFTS")
[ -n "$BASE" ] && args+=(--base "$BASE" --quants "${QUANTS:?--base needs --quants}" --work-dir "$RUN/drafts")
[ -n "$PROMPTS" ] && args+=(--prompts "$PROMPTS")
[ "$QUICK" = 1 ] && args+=(--max-rounds 40 --min-rounds 10 --timing-rounds 4 --idle-baseline 0s)
"$EDGE" "${args[@]}" | tee "$RUN/profile.log"

for objective in goodput cost energy weighted; do
  if "$EDGE" select --profile "$RUN/profile.json" --objective "$objective" --price-per-mtok "$PRICE" --json > "$RUN/select-$objective.json" 2> "$RUN/select-$objective.err"; then
    rm -f "$RUN/select-$objective.err"
    "$EDGE" select --profile "$RUN/profile.json" --objective "$objective" --price-per-mtok "$PRICE" --top 5 > "$RUN/select-$objective.txt"
  else
    log "select --objective $objective: $(cat "$RUN/select-$objective.err")"
    rm -f "$RUN/select-$objective.json"
  fi
done
"$EDGE" select --profile "$RUN/profile.json" --price-per-mtok "$PRICE" --sweep-t-verify 0,10ms,20ms,50ms,100ms,200ms > "$RUN/delay-sweep.txt"
"$EDGE" report --profile "$RUN/profile.json" --price-per-mtok "$PRICE" --out "$RUN/report" >/dev/null

cat > "$RUN/README.txt" <<NOTE
ConfigSpec lab campaign, $(date -u +%Y-%m-%dT%H:%M:%SZ)
device: $DEVICE   verifier: ${VERIFIER:-local $TARGET}   power: $POWER   k-max: $KMAX   price: $PRICE USD/Mtok
profile.json / profile.csv   measurements (versioned profile; CSV beside it)
select-<objective>.json/.txt the ranked configurations and the choice for goodput, cost, energy, weighted
delay-sweep.txt              how the goodput choice moves with the verification delay
report/report.html           charts (open in a browser), report/*.csv
NOTE
log "done: $RUN/report/report.html"
grep -h "^chosen:" "$RUN"/select-*.txt | sed 's/^/  /' || true
