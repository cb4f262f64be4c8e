#!/usr/bin/env bash
# Pipelined speculation against sequential rounds over a real verifier, mosquitto and configspec-delayproxy, drafting
# held to a 25 tokens/s board's pace. For each one-way delay and draft: the best sequential (D = 1) configuration
# against the best pipelined one (D >= 2), same run, K and D swept. Prints figures; passes or fails on nothing.
# Usage: scripts/bench/pipeline.sh [--quick]   (programs from out/bin, or EDGE= VERIFIER= DELAYPROXY= to override)
source "$(dirname "$0")/../lib/common.sh"
QUICK=0
[ "${1:-}" = --quick ] && QUICK=1
EDGE="${EDGE:-$ROOT/out/bin/configspec-edge}"
VERIFIER="${VERIFIER:-$ROOT/out/bin/configspec-verifier}"
DELAYPROXY="${DELAYPROXY:-$ROOT/out/bin/configspec-delayproxy}"
M="$ROOT/models"
LIBDIR="$ROOT/lib/llama/$(host_platform)"
export CONFIGSPEC_LLAMA_DIR="${CONFIGSPEC_LLAMA_DIR:-$LIBDIR}"
TOKENS=$([ $QUICK = 1 ] && echo 60 || echo 150)
KS=$([ $QUICK = 1 ] && echo "4 8" || echo "2 4 8 12")
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
sweep() {
  local delay="$1" proxy
  proxy="$(free_port)"
  "$DELAYPROXY" --listen "127.0.0.1:$proxy" --upstream "127.0.0.1:$PORT" --delay-ms "$delay" 2>/dev/null &
  local proxy_pid=$!
  wait_port "$proxy"
  for draft in $DRAFTS; do
    for k in $KS; do
      for d in $DS; do
        local json tps
        json=$("$EDGE" generate --verifier "mqtt://127.0.0.1:$proxy" --target-id stories260K --draft "$M/$draft" --k "$k" --pipeline "$d" \
          --draft-tokens-per-s 25 --max-tokens "$TOKENS" --prompt "Once upon a time" --idle-baseline 0s --json) || continue
        tps=$(sed -n 's/.*"tokens_per_s":\([0-9.eE+-]*\).*/\1/p' <<<"$json")
        echo "$delay $draft $k $d $tps $(sed -n 's/.*"discarded_tokens":\([0-9]*\).*/\1/p' <<<"$json") $(sed -n 's/.*"drafted_tokens":\([0-9]*\).*/\1/p' <<<"$json")"
      done
    done
  done >"$WORK/sweep-$delay.txt"
  kill "$proxy_pid" 2>/dev/null; wait "$proxy_pid" 2>/dev/null || true
}

started=$SECONDS
pids=()
for delay in $DELAYS; do sweep "$delay" & pids+=($!); done
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
stop_background
