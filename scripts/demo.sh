#!/usr/bin/env bash
# The main job: a whole ConfigSpec fleet on this machine, on embedded defaults. Builds the programs (native AOT),
# fetches the llama.cpp libraries and the small models, starts a private mosquitto on a free loopback port, a
# configspec-verifier holding the target (stories260K), the configspec-aggregator, and three configspec-edge
# daemons standing for three board models, each with its own drafts and power source (this machine's real sensor
# when it has one, else a labelled estimate; the two stand-in boards use their labelled estimates). Each daemon
# profiles, selects and publishes; the aggregator ranks. The demo prints the fleet ranking per objective and the
# dashboard address, runs one generation through a board with its chosen configuration, and stops everything it
# started on exit or Ctrl-C. Safe to run again (state lives in out/demo-fleet/ and is reset each run).
# Usage: scripts/demo.sh [--keep] [--prompt TEXT] [--max-tokens N]
#   --keep   leave the fleet running (dashboard live) until Ctrl-C
# scripts/demo-board.sh shows one board in detail (generation over MQTT and a delay proxy, energy, a profile report).
source "$(dirname "$0")/lib/common.sh"
KEEP=0 PROMPT="Once upon a time" MAX=48
while [ $# -gt 0 ]; do
  case "$1" in
    --keep) KEEP=1; shift ;;
    --prompt) PROMPT="$2"; shift 2 ;;
    --max-tokens) MAX="$2"; shift 2 ;;
    *) die "unknown option $1 (see the header of scripts/demo.sh)" ;;
  esac
done

"$ROOT/scripts/build.sh"
CONFIGSPEC_EDGE="$ROOT/out/bin/configspec-edge" "$ROOT/scripts/fetch-models.sh"
command -v curl >/dev/null || ensure_apt curl
BIN="$ROOT/out/bin"
M="$ROOT/models"
STATE="$ROOT/out/demo-fleet"
rm -rf "$STATE" && mkdir -p "$STATE"

PORT="$(free_port)"
log "private mosquitto on 127.0.0.1:$PORT"
start_broker "$PORT"
BROKER="mqtt://127.0.0.1:$PORT"
start_verifier "$STATE/verifier.log" --model "$M/stories260K.gguf" --broker "$BROKER" --instance-id demo-verifier --llama-dir "$BIN" >/dev/null
log "configspec-verifier serving target stories260K"

API_PORT="$(free_port)"
"$BIN/configspec-aggregator" --broker "$BROKER" --db "$STATE/fleet.db" --http "http://127.0.0.1:$API_PORT" >"$STATE/aggregator.log" 2>&1 &
BACKGROUND_PIDS+=($!)
wait_port "$API_PORT"
API="http://127.0.0.1:$API_PORT"
log "configspec-aggregator: dashboard $API/"

# This machine's own power source if it has one; the stand-ins use the estimates for their boards (labelled as such).
HERE_POWER=auto
# board id | board model | drafts | power
BOARDS=(
  "this-machine|$("$BIN/configspec-edge" run --check --set drafts="$M/stories260K-Q8_0.gguf" --set verifier:target_id=x | sed -n 's/.*, board \(.*\), state .*/\1/p')|stories260K-Q8_0.gguf,stories260K-Q4_K_M.gguf|$HERE_POWER"
  "pi5-standin|Raspberry Pi 5 Model B Rev 1.0|stories260K-Q4_0.gguf,stories260K-Q4_K_M.gguf|estimate:board=rpi5"
  "orin-standin|NVIDIA Jetson Orin Nano Developer Kit|stories260K-Q8_0.gguf,stories260K-prune4-F32.gguf|estimate:board=orin-nano"
)
declare -A HTTP
for entry in "${BOARDS[@]}"; do
  IFS='|' read -r id board drafts power <<<"$entry"
  [ -n "$board" ] && [ "$board" != unknown ] || board="x86-64 workstation"
  http="$(free_port)"; HTTP[$id]=$http
  list="$(tr ',' '\n' <<<"$drafts" | sed "s#.*#\"$M/&\"#" | paste -sd, -)"
  mkdir -p "$STATE/$id"
  cat >"$STATE/$id/edge.json" <<JSON
{
  "device_id": "$id", "board": "$board", "state_dir": "$STATE/$id/state",
  "broker": {"url": "$BROKER"}, "verifier": {"target_id": "stories260K"},
  "drafts": [$list], "power": "$power", "k_max": 8, "objective": "goodput",
  "http": "http://127.0.0.1:$http", "metrics_interval_s": 5, "llama_dir": "$BIN", "home_assistant": true,
  "profile": {"max_rounds": 120, "timing_rounds": 8, "idle_baseline": "1s"}, "fleet": {"adopt": false}
}
JSON
  "$BIN/configspec-edge" run --config "$STATE/$id/edge.json" >"$STATE/$id/daemon.log" 2>&1 &
  BACKGROUND_PIDS+=($!)
  log "configspec-edge $id ($board; drafts $drafts; power $power); log $STATE/$id/daemon.log"
done

log "the daemons profile their drafts against the verifier, select and publish (about a minute)"
for entry in "${BOARDS[@]}"; do
  id="${entry%%|*}"
  for _ in $(seq 600); do
    grep -q "serving stories" "$STATE/$id/daemon.log" && break
    grep -q "cannot go on" "$STATE/$id/daemon.log" && { cat "$STATE/$id/daemon.log" >&2; die "$id failed"; }
    sleep 0.5
  done
  grep -q "serving stories" "$STATE/$id/daemon.log" || { tail -5 "$STATE/$id/daemon.log" >&2; die "$id did not start serving"; }
  printf '  %-14s %s\n' "$id" "$(grep -o 'serving stories.*' "$STATE/$id/daemon.log" | tail -1)"
done
sleep 2 # the aggregator re-ranks within a second of the last profile

for objective in goodput cost energy; do
  log "fleet ranking for $objective (top 3 per board model; the median over the devices of each model)"
  curl -sf "$API/api/rankings?objective=$objective&top=3&format=text"
done

log "one generation through this-machine with its chosen configuration (HTTP on loopback; also over MQTT on configspec/v1/edge/this-machine/generate)"
REPLY="$(curl -sf -X POST "http://127.0.0.1:${HTTP[this-machine]}/v1/generate" -H 'content-type: application/json' \
  -d "{\"prompt\": \"$PROMPT\", \"max_tokens\": $MAX}")"
printf '  %s%s\n' "$PROMPT" "$(sed -n 's/.*"text":"\(.*\)","tokens":.*/\1/p' <<<"$REPLY")"
sed 's/.*"tokens":[0-9]*,//; s/"text":"[^"]*",//' <<<"$REPLY" | tr ',' '\n' | grep -E '"(draft|quant|k|rounds|acceptance|tokens_per_s|draft_joules|power_estimated)"' | tr -d '{}' | paste -sd' ' | sed 's/^/  /'

log "fleet health: $(curl -sf "$API/api/health" | tr -d '{}' | cut -d, -f1-7)"
echo "dashboard: $API/   (API: $API/api/devices, $API/api/rankings?objective=energy)"
if [ "$KEEP" = 1 ]; then
  log "the fleet keeps running; Ctrl-C stops everything"
  while true; do sleep 3600; done
fi
log "stopping the fleet (run with --keep to leave the dashboard up)"
