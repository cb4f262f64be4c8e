#!/usr/bin/env bash
# Pipelined speculation against sequential rounds over a real verifier, mosquitto and configspec-delayproxy, drafting
# held to a 25 tokens/s board's pace. For each one-way delay and draft: the best sequential (D = 1) configuration
# against the best pipelined one (D >= 2), same run, K and D swept; then the pipelined model's prediction against a
# measured run of the chosen configurations (profile and validate at the same pace). Prints figures; passes or fails on nothing.
# Usage: scripts/bench/pipeline.sh [--quick] [--sweep-only | --model-only]
#   (programs from out/bin, or EDGE= VERIFIER= DELAYPROXY= to override)
source "$(dirname "$0")/../lib/common.sh"
QUICK=0 SWEEP=1 MODEL=1
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    --sweep-only) MODEL=0 ;;
    --model-only) SWEEP=0 ;;
    *) die "pipeline.sh: unknown argument '$arg' (--quick, --sweep-only, --model-only)" ;;
  esac
done
EDGE="${EDGE:-$ROOT/out/bin/configspec-edge}"
VERIFIER="${VERIFIER:-$ROOT/out/bin/configspec-verifier}"
DELAYPROXY="${DELAYPROXY:-$ROOT/out/bin/configspec-delayproxy}"
M="$ROOT/models"
LIBDIR="$ROOT/lib/llama/$(host_platform)"
export CONFIGSPEC_LLAMA_DIR="${CONFIGSPEC_LLAMA_DIR:-$LIBDIR}"
TOKENS=$([ $QUICK = 1 ] && echo 80 || echo 200)
KS=$([ $QUICK = 1 ] && echo "1 4 8" || echo "1 2 3 4 6 8 12")
DS=$([ $QUICK = 1 ] && echo "1 2 4" || echo "1 2 4 8")
DELAYS="20 50 100"
DRAFTS="stories260K-Q4_0.gguf stories260K-Q8_0.gguf"

temp_dir WORK
PORT="$(free_port)"
start_broker "$PORT"
"$VERIFIER" --model "$M/stories260K.gguf" --broker "mqtt://127.0.0.1:$PORT" --instance-id bench-pipeline --llama-dir "$LIBDIR" \
  --max-pipeline 8 >"$WORK/verifier.log" 2>&1 &
BACKGROUND_PIDS+=($!)
for _ in $(seq 100); do grep -q "serving target" "$WORK/verifier.log" && break; sleep 0.1; done

# One delay's sweep, written to its own file; the three delays run at once (each through its own proxy).
# with_proxy DELAY FUNCTION: runs FUNCTION DELAY PORT with a delay proxy in front of the broker on PORT, then stops it.
with_proxy() {
  local delay="$1" run="$2" proxy
  proxy="$(free_port)"
  "$DELAYPROXY" --listen "127.0.0.1:$proxy" --upstream "127.0.0.1:$PORT" --delay-ms "$delay" 2>/dev/null &
  local proxy_pid=$!
  wait_port "$proxy"
  "$run" "$delay" "$proxy"
  kill "$proxy_pid" 2>/dev/null; wait "$proxy_pid" 2>/dev/null || true
}

sweep() {
  local delay="$1" proxy="$2"
  for draft in $DRAFTS; do
    for k in $KS; do
      for d in $DS; do
        local json tps
        json=$("$EDGE" generate --verifier "mqtt://127.0.0.1:$proxy" --target-id stories260K --draft "$M/$draft" --k "$k" --pipeline "$d" \
          --draft-tokens-per-s 25 --max-tokens "$TOKENS" --prompt "Once upon a time" --idle-baseline 0s --json) || continue
        # Goodput: tokens over the span from the first block's drafting to the last verdict (the session's opening,
        # a one-time round trip, is left out alike for every configuration).
        tps=$(sed -n 's/.*"goodput_tokens_per_s":\([0-9.eE+-]*\).*/\1/p' <<<"$json")
        echo "$delay $draft $k $d $tps $(sed -n 's/.*"discarded_tokens":\([0-9]*\).*/\1/p' <<<"$json") $(sed -n 's/.*"drafted_tokens":\([0-9]*\).*/\1/p' <<<"$json")"
      done
    done
  done >"$WORK/sweep-$delay.txt"
}

if [ $SWEEP = 1 ]; then
  started=$SECONDS
  pids=()
  for delay in $DELAYS; do with_proxy "$delay" sweep & pids+=($!); done
  wait "${pids[@]}"
  log "swept K in {$KS} and D in {$DS}, $TOKENS tokens per run, in $((SECONDS - started)) s"
  printf '%-9s %-24s %-18s %-22s %8s %s\n' delay_ms draft "best D=1 (K, tok/s)" "best D>=2 (K, D, tok/s)" ratio "discarded/drafted at best"
  for delay in $DELAYS; do
    for draft in $DRAFTS; do
      awk -v D="$delay" -v n="$draft" '
        $2 == n && $4 == 1 && $5 > s1 { s1 = $5; k1 = $3 }
        $2 == n && $4 > 1 && $5 > sp { sp = $5; kp = $3; dp = $4; waste = $6 "/" $7 }
        END { if (s1 > 0 && sp > 0) printf "%-9s %-24s K=%-3s %8.2f     K=%-3s D=%-2s %8.2f     %7.2fx %s\n", D, n, k1, s1, kp, dp, sp, sp / s1, waste }' "$WORK/sweep-$delay.txt"
    done
  done
  echo "(every configuration, D = 1 included, is on offer to the selector, so the pipelined choice is never below 1.0x of the best sequential one)"
fi
[ $MODEL = 1 ] || { stop_background; exit 0; }

# The model against measurement: a profile taken at the board's pace over each delay, then `validate` of the
# configuration the selector chooses with --pipeline 8 and of the best sequential one (--pipeline 1).
ROUNDS=$([ $QUICK = 1 ] && echo 30 || echo 200)
VTOKENS=$([ $QUICK = 1 ] && echo 128 || echo 768)
cat >"$WORK/row.py" <<'PY'
import json, sys
delay, draft, j = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
p, m = j["predicted"], j["measured"]
config = f"K={j['k']} D={j['pipeline']}"
# predicted: for generations of the lengths run (pipelined; the steady state beside it), or the steady state (sequential).
predicted = j.get("predicted_generation_goodput_tokens_per_s") or p["goodput_tokens_per_s"]
print(f"{delay:<9} {draft:<24} {config:<11} {p['goodput_tokens_per_s']:10.2f} {predicted:10.2f} {m['goodput_tokens_per_s']:10.2f}"
      f" {j['goodput_error_pct']:+8.1f}%")
PY
check() {
  local delay="$1" proxy="$2"
  local url="mqtt://127.0.0.1:$proxy" profile="$WORK/profile-$delay.json"
  "$EDGE" profile --verifier "$url" --target-id stories260K --drafts "$M/stories260K-Q4_0.gguf,$M/stories260K-Q8_0.gguf" --draft-tokens-per-s 25 \
    --max-rounds "$ROUNDS" --min-rounds 20 --timing-rounds 4 --idle-baseline 0s --out "$profile" --force >/dev/null 2>&1 || { echo "$delay profile failed"; return; }
  for depth in 1 8; do
    for draft in $DRAFTS; do
      local chosen k d json
      chosen=$("$EDGE" select --profile "$profile" --pipeline "$depth" --json --top 200 | python3 -c '
import json, sys
j = json.load(sys.stdin); name = sys.argv[1].replace(".gguf", "")
best = max((c for c in j["ranked"] if c["draft"] == name), key=lambda c: c["goodput_tokens_per_s"])
print(best["k"], best["pipeline"])' "$draft")
      read -r k d <<<"$chosen"
      json=$("$EDGE" validate --profile "$profile" --verifier "$url" --draft "$M/$draft" --k "$k" --pipeline "$d" --draft-tokens-per-s 25 \
        --tokens "$VTOKENS" --json) || continue
      python3 "$WORK/row.py" "$delay" "$draft" "$json"
    done
  done >"$WORK/check-$delay.txt"
}

started=$SECONDS
pids=()
for delay in 20 100; do with_proxy "$delay" check & pids+=($!); done
wait "${pids[@]}"
log "profiled at 25 tokens/s and validated the chosen configurations in $((SECONDS - started)) s"
printf '%-9s %-24s %-11s %10s %10s %10s %9s\n' delay_ms draft config steady predicted measured error
cat "$WORK"/check-20.txt "$WORK"/check-100.txt
stop_background
