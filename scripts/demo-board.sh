#!/usr/bin/env bash
# One board in detail (scripts/demo.sh runs the whole fleet): builds the programs (native AOT), fetches the llama.cpp libraries
# and the small models, starts a private mosquitto on loopback and a configspec-verifier holding the
# target, then runs speculative generation on the "board" side through the broker and prints the text,
# acceptance by draft position, and the speed against target-only decoding over the same broker.
# Then the same locally, a profile of this machine with the configuration each objective picks and an HTML
# report (out/demo/report/report.html), and the acceptance of every shipped draft. Safe to run again.
# Usage: scripts/demo-board.sh [--draft NAME] [--k K] [--max-tokens N] [--prompt TEXT]
source "$(dirname "$0")/lib/common.sh"
DRAFT=stories260K-Q4_K_M.gguf K=4 MAX=200 PROMPT="Once upon a time"
while [ $# -gt 0 ]; do
  case "$1" in
    --draft) DRAFT="$2"; shift 2 ;;
    --k) K="$2"; shift 2 ;;
    --max-tokens) MAX="$2"; shift 2 ;;
    --prompt) PROMPT="$2"; shift 2 ;;
    *) die "unknown option $1 (see the header of scripts/demo-board.sh)" ;;
  esac
done

run_step "$ROOT/scripts/build.sh"
CONFIGSPEC_EDGE="$ROOT/out/bin/configspec-edge" run_step "$ROOT/scripts/fetch-models.sh"
EDGE="$ROOT/out/bin/configspec-edge"
M="$ROOT/models"

PORT="$(free_port)"
log "private mosquitto on 127.0.0.1:$PORT"
start_broker "$PORT"
temp_dir LOGS
VLOG="$LOGS/verifier.log"
start_verifier "$VLOG" --model "$M/stories260K.gguf" --broker "mqtt://127.0.0.1:$PORT" --instance-id demo-verifier \
  --llama-dir "$ROOT/out/bin" >/dev/null
log "configspec-verifier serving target stories260K"

log "speculative generation over MQTT: draft $DRAFT on the board, target in the verifier, K=$K"
"$EDGE" generate --verifier "mqtt://127.0.0.1:$PORT" --target-id stories260K --draft "$M/$DRAFT" --k "$K" \
  --max-tokens "$MAX" --prompt "$PROMPT" --compare-target --device-id demo-board

PROXY="$(free_port)"
"$ROOT/out/bin/configspec-delayproxy" --listen "127.0.0.1:$PROXY" --upstream "127.0.0.1:$PORT" --delay-ms 20 2>/dev/null &
BACKGROUND_PIDS+=($!)
wait_port "$PROXY"
log "the same across a 20 ms (each way) link, through configspec-delayproxy: every target-only token is a 40 ms round trip"
"$EDGE" generate --verifier "mqtt://127.0.0.1:$PROXY" --target-id stories260K --draft "$M/$DRAFT" --k "$K" \
  --max-tokens 60 --prompt "$PROMPT" --compare-target --device-id demo-board | tail -4
stop_background

# Energy: the real power source when this machine has one, else a clearly labelled estimate.
POWER="estimate:board=$([ "$(uname -m)" = aarch64 ] && echo rpi5 || echo x86)"
DETECTED="$("$EDGE" power --detect)"
for candidate in hwmon rapl tegrastats pmic; do
  if grep -q "^found   $candidate " <<<"$DETECTED"; then POWER="$candidate"; break; fi
done
log "the same with the target in this process; drafting energy from '$POWER'"
"$EDGE" generate --target "$M/stories260K.gguf" --draft "$M/$DRAFT" --k "$K" --max-tokens "$MAX" \
  --prompt "$PROMPT" --compare-target --power "$POWER" --idle-baseline 1s

cat <<'NOTE'
(These toy drafts cost as much per token as the 260K-parameter target, so with no network in between
 speculation cannot win; across a real link every target-only token is a round trip and it pays. On a real
 board the draft is also far cheaper than a cloud target: that trade-off is what ConfigSpec models.)
NOTE

log "profile this machine for every shipped draft (local target; power from '$POWER'), then pick a configuration"
PROFILE_DIR="$ROOT/out/demo"
mkdir -p "$PROFILE_DIR"
"$EDGE" profile --target "$M/stories260K.gguf" --force --out "$PROFILE_DIR/profile.json" --power "$POWER" --idle-baseline 1s \
  --drafts "$M/stories260K-Q8_0.gguf,$M/stories260K-Q4_K_M.gguf,$M/stories260K-Q4_0.gguf,$M/stories260K-prune4-F32.gguf" \
  --max-rounds 120 --timing-rounds 8 | grep -v '^  '
cat <<'NOTE'
(A profile stops when the 95% intervals of drafting speed and mean accepted length are within ±3%, or at its round
 budget, 120 here to keep the demo short: then the figures stand with the wider intervals the profile records.)
NOTE
for objective in goodput cost energy; do
  "$EDGE" select --profile "$PROFILE_DIR/profile.json" --objective "$objective" | grep -E '^(chosen|why):'
done
"$EDGE" select --profile "$PROFILE_DIR/profile.json" --sweep-t-verify 0,20ms,100ms | grep '^T_verify'
"$EDGE" report --profile "$PROFILE_DIR/profile.json" --out "$PROFILE_DIR/report" | head -1

log "acceptance of every shipped draft (K=8, greedy; '-' = position never reached)"
printf '%-32s %-46s %s\n' draft "acceptance by position" "mean accepted"
for d in stories260K-Q8_0.gguf stories260K-Q4_K_M.gguf stories260K-Q4_0.gguf stories260K-prune4-F32.gguf stories260K-prune1234-F32.gguf; do
  json="$("$EDGE" generate --target "$M/stories260K.gguf" --draft "$M/$d" --k 8 --max-tokens "$MAX" --prompt "$PROMPT" --json)"
  by=$(sed -n 's/.*"accepted_by_position":\[\([^]]*\)\].*/\1/p' <<<"$json" | tr ',' '\n' | awk '$1 == "null" {printf "  -  "; next} {printf "%.2f ", $1}')
  mean=$(sed -n 's/.*"mean_accepted":\([0-9.eE+-]*\).*/\1/p' <<<"$json")
  printf '%-32s %-46s %.2f\n' "$d" "$by" "$mean"
done
