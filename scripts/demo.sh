#!/usr/bin/env bash
# The main job: a whole ConfigSpec fleet on this machine, on embedded defaults. Builds the programs (native AOT),
# fetches the llama.cpp libraries and the small models, starts a private mosquitto on a free loopback port, a
# configspec-verifier holding the target (stories260K), the configspec-aggregator, and three configspec-edge
# daemons standing for three board models, each with its own drafts and power source (this machine's real sensor
# when it has one, else a labelled estimate; the two stand-in boards use their labelled estimates). Each daemon
# profiles, selects and publishes; the aggregator ranks. The demo prints the fleet ranking per objective and the
# dashboard address, runs one generation through a board with its chosen configuration, and stops everything it
# started on exit, Ctrl-C or TERM, at any moment (a build in progress included). Safe to run again (state lives in
# out/demo-fleet/ and is reset each run; no temporary folder is left behind).
# Usage: scripts/demo.sh [--keep] [--prompt TEXT] [--max-tokens N]
#   --keep   leave the fleet running, its dashboard live and the boards generating now and then, until Ctrl-C or TERM
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

DEMO_STARTED=$SECONDS
run_step "$ROOT/scripts/build.sh"
CONFIGSPEC_EDGE="$ROOT/out/bin/configspec-edge" run_step "$ROOT/scripts/fetch-models.sh"
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
log "configspec-aggregator on $API"

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

log "the daemons profile their drafts against the verifier, select and publish (about 20 s on 2 cores)"
PROFILE_STARTED=$SECONDS
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
log "profiled, selected and published in $((SECONDS - PROFILE_STARTED)) s. Each profile stops when the 95% intervals of drafting
    speed and mean accepted length are within ±3%, or at its round budget (120 here, to keep the demo short): then the
    figures stand with wider intervals, which the profile records (out/demo-fleet/<board>/state/profile.json)"
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
if [ "$KEEP" = 1 ]; then
  # Some generation traffic, so that the dashboard's live figures (goodput, acceptance, watts, J/token) move.
  traffic() {
    local prompts=("Once upon a time" "The little dog" "One day, a girl named Lily" "Tom and his friend")
    local n=0 id
    while true; do
      for id in "${!HTTP[@]}"; do
        curl -sf -o /dev/null -X POST "http://127.0.0.1:${HTTP[$id]}/v1/generate" -H 'content-type: application/json' \
          -d "{\"prompt\": \"${prompts[$((n % ${#prompts[@]}))]}\", \"max_tokens\": 64}" || true
        n=$((n + 1))
      done
      sleep 2
    done
  }
  traffic &
  BACKGROUND_PIDS+=($!)
  log "ready in $((SECONDS - DEMO_STARTED)) s. The fleet keeps running and the boards generate every few seconds"
  echo "dashboard: $API/   (API: $API/api/devices, $API/api/rankings?objective=energy&format=text, $API/metrics)"
  echo "Ctrl-C (or kill -TERM $$) stops everything"
  while true; do run_step sleep 3600; done
fi
log "done in $((SECONDS - DEMO_STARTED)) s; stopping the fleet (scripts/demo.sh --keep leaves it and its dashboard up)"
