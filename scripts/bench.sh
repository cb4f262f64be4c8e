#!/usr/bin/env bash
# Benchmarks; prints figures (nothing here passes or fails on speed).
#  1. drafting speed: configspec-edge's managed decode loop and drafter vs the same loop in C (overhead %)
#  2. speculative vs target-only wall time for each shipped draft and K, local verifier
#  3. native AOT binary size, start-up time, resident memory with target and draft loaded
#  4. protocol overhead: round time over a loopback mosquitto minus the verifier's compute time
#  5. verifier throughput against 1..32 concurrent boards, batched against one-at-a-time
#  6. goodput over MQTT against target-only over the same broker, with 0/20/100 ms injected per direction
#  7. power sampler: achieved rate and CPU cost at 10, 50 and 100 Hz (sysfs fixture, replay, estimate)
#  8. model validation: profile over MQTT with 0/20/100 ms injected, then predicted against measured goodput
#  9. the fleet: daemon start-up to READY, idle CPU and memory; aggregator ingest from 1,000 simulated boards, API latency
# 10. draft-length policies: ucb-specstop (with and without the link probe), profile, confidence and static K against the
#     oracle, in simulation and with real models through the delay proxy (drafting held to a 25 tokens/s board's pace)
# 11. pipelined speculation: best sequential (D = 1) against best pipelined configuration over the delay proxy at
#     20/50/100 ms one way, Q4_0 and Q8_0 drafts, drafting held to 25 tokens/s (scripts/bench/pipeline.sh)
# Usage: scripts/bench.sh [--quick] [--only N]
source "$(dirname "$0")/lib/common.sh"
QUICK=0 ONLY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1; shift ;;
    --only) ONLY="$2"; shift 2 ;;
    *) die "unknown option $1" ;;
  esac
done
want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }
TOKENS=$([ $QUICK = 1 ] && echo 2000 || echo 20000)
REPEAT=$([ $QUICK = 1 ] && echo 3 || echo 7)
PLATFORM="$(host_platform)"
LIBDIR="$ROOT/lib/llama/$PLATFORM"

"$ROOT/scripts/build.sh" >/dev/null
CONFIGSPEC_EDGE="$ROOT/out/bin/configspec-edge" "$ROOT/scripts/fetch-models.sh" 2>/dev/null
EDGE="$ROOT/out/bin/configspec-edge"
M="$ROOT/models"
temp_dir WORK
command -v cc >/dev/null || ensure_apt build-essential
[ -x /usr/bin/time ] || ensure_apt time

# The C header matching the pinned build ships inside npm node-llama-cpp@3.22.1 as a git bundle.
HEADERS="$ROOT/.cache/llama-src"
if [ ! -f "$HEADERS/include/llama.h" ]; then
  log "fetching the llama.cpp source matching the pinned build (for the C reference loop)"
  work="$(mktemp -d)"
  (cd "$work" && npm pack --silent node-llama-cpp@3.22.1 >/dev/null)
  verify_sha256 "$work/node-llama-cpp-3.22.1.tgz" a0d9dd80eacd2ab1cfe71aee57ac8a806487fd70b3d2a38fbec637752d9e5c5f
  tar xzf "$work/node-llama-cpp-3.22.1.tgz" -C "$work" package/llama/gitRelease.bundle
  rm -rf "$HEADERS" && mkdir -p "$ROOT/.cache"
  git clone -q "$work/package/llama/gitRelease.bundle" "$HEADERS" 2>/dev/null
  rm -rf "$work"
fi
CLOOP="$ROOT/.cache/decode_loop"
cc -O2 -o "$CLOOP" "$ROOT/scripts/bench/decode_loop.c" -I"$HEADERS/include" -I"$HEADERS/ggml/include" \
  -L"$LIBDIR" -l:"$(basename "$(ls "$LIBDIR"/libllama*.so | grep -v common | tail -1)")" \
  -l:"$(basename "$(ls "$LIBDIR"/libggml.so "$LIBDIR"/libggml.v*.so 2>/dev/null | tail -1)")" -Wl,-rpath,"$LIBDIR"

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }

if want 1; then
echo "== 1. drafting speed, stories260K-Q4_K_M.gguf, 1 thread, $TOKENS tokens, $REPEAT interleaved runs (median) =="
c_runs=() out_runs=()
for i in $(seq "$REPEAT"); do
  c_runs+=("$("$CLOOP" "$LIBDIR" "$M/stories260K-Q4_K_M.gguf" "$TOKENS" 1 | field us_per_token)")
  "$EDGE" bench decode --model "$M/stories260K-Q4_K_M.gguf" --tokens "$TOKENS" --threads 1 >"$WORK/decode-$i.txt"
done
c=$(printf '%s\n' "${c_runs[@]}" | median)
# One figure of every run: the median over runs of that line's field.
pick() { cat "$WORK"/decode-*.txt | grep -- "$1" | field "$2" | median; }
api=$(pick "managed-api  depth=500" us_per_token)
dr=$(pick "depth=500 mode=sequential" us_per_token)
awk -v c="$c" -v a="$api" -v d="$dr" 'BEGIN {
  printf "  C API loop          %8.2f us/token  %8.0f tokens/s\n", c, 1e6 / c
  printf "  managed API loop    %8.2f us/token  %8.0f tokens/s  overhead %+.2f%%\n", a, 1e6 / a, (a - c) / c * 100
  printf "  drafter (K=8 blocks)%8.2f us/token  %8.0f tokens/s  vs C %+.2f%%\n", d, 1e6 / d, (d - c) / c * 100 }'
echo "  per decoded token against the managed loop at the same KV depths (1.0 = no drafter overhead):"
for depth in 128 500; do
  a=$(pick "managed-api  depth=$depth " us_per_token)
  for mode in sequential chained; do
    d=$(pick "depth=$depth mode=$mode" us_per_decoded)
    awk -v depth="$depth" -v mode="$mode" -v a="$a" -v d="$d" 'BEGIN {
      printf "    depth 0..%-4d %-10s drafter %7.2f us/decoded token, loop %7.2f: %.3f of the loop'"'"'s speed\n", depth - 1, mode, d, a, a / d }'
  done
done

fi

if want 2; then
echo
echo "== 2. speculative vs target-only, local verifier, greedy, 200 tokens, median of $REPEAT =="
"$EDGE" bench speculative --target "$M/stories260K.gguf" --repeat "$REPEAT" --k 1,4,8 \
  --drafts "$M/stories260K-Q8_0.gguf,$M/stories260K-Q4_K_M.gguf,$M/stories260K-Q4_0.gguf,$M/stories260K-prune4-F32.gguf,$M/stories260K-prune1234-F32.gguf"

fi

if want 3; then
echo
echo "== 3. native AOT binary =="
size=$(stat -c %s "$EDGE")
echo "  size                 $((size / 1024)) KiB ($size bytes; debug symbols in configspec-edge.dbg)"
t0=$(date +%s%N); for _ in $(seq 20); do "$EDGE" --help >/dev/null; done; t1=$(date +%s%N)
echo "  start-up (--help)    $(( (t1 - t0) / 20 / 1000 )) us mean of 20"
t0=$(date +%s%N); for _ in $(seq 10); do "$EDGE" model info "$M/stories260K.gguf" >/dev/null; done; t1=$(date +%s%N)
echo "  model info (load libraries + model) $(( (t1 - t0) / 10 / 1000 )) us mean of 10"
rss=$(/usr/bin/time -f %M "$EDGE" generate --target "$M/stories260K.gguf" --draft "$M/stories260K-Q4_K_M.gguf" --k 4 --max-tokens 200 --prompt "Once upon a time" 2>&1 >/dev/null | tail -1)
echo "  peak RSS, generate with target + draft loaded: ${rss} KiB"
fi

if want 4 || want 5 || want 6 || want 8 || want 9; then
  PORT="$(free_port)"
  start_broker "$PORT"
  BROKER="mqtt://127.0.0.1:$PORT"
  LOGS="$(mktemp -d)"
fi

if want 4 || want 5; then
  start_verifier "$LOGS/batched.log" --model "$M/stories260K.gguf" --broker "$BROKER" --instance-id bench-batched \
    --max-sessions 32 --batch-window-ms 2 --llama-dir "$LIBDIR" >/dev/null
  if want 4; then
    echo
    echo "== 4. protocol overhead over loopback mosquitto (draft Q4_K_M, K=4) =="
    "$EDGE" bench rounds --verifier "$BROKER" --draft "$M/stories260K-Q4_K_M.gguf" --k 4 --rounds $([ $QUICK = 1 ] && echo 200 || echo 1000)
  fi
  if want 5; then
    SECONDS_PER=$([ $QUICK = 1 ] && echo 1 || echo 3)
    echo
    echo "== 5. verifier throughput against concurrent boards (synthetic boards, K=4, ${SECONDS_PER} s each) =="
    "$EDGE" bench fleet --verifier "$BROKER" --boards 1,2,4,8,16,32 --seconds "$SECONDS_PER" --label "batched (window 2 ms)"
  fi
  stop_background; start_broker "$PORT"
  if want 5; then
    start_verifier "$LOGS/single.log" --model "$M/stories260K.gguf" --broker "$BROKER" --instance-id bench-single \
      --max-sessions 32 --batch-window-ms 0 --max-batch 1 --llama-dir "$LIBDIR" >/dev/null
    "$EDGE" bench fleet --verifier "$BROKER" --boards 1,2,4,8,16,32 --seconds "$SECONDS_PER" --label "one at a time (--max-batch 1)"
    stop_background; start_broker "$PORT"
  fi
fi

if want 6; then
  echo
  echo "== 6. goodput over MQTT, K=4, greedy; delay injected in each direction between board and broker =="
  start_verifier "$LOGS/goodput.log" --model "$M/stories260K.gguf" --broker "$BROKER" --instance-id bench-goodput --llama-dir "$LIBDIR" >/dev/null
  printf '%-8s %-32s %10s %10s %8s %9s\n' delay_ms draft tokens/s target/s speedup mean_acc
  for delay in 0 20 100; do
    PROXY="$(free_port)"
    "$ROOT/out/bin/configspec-delayproxy" --listen "127.0.0.1:$PROXY" --upstream "127.0.0.1:$PORT" --delay-ms "$delay" 2>/dev/null &
    PROXY_PID=$!
    wait_port "$PROXY"
    tokens=$([ "$delay" = 100 ] && echo 40 || echo 100)
    base=$("$EDGE" generate --verifier "mqtt://127.0.0.1:$PROXY" --target-id stories260K --draft "$M/stories260K-Q8_0.gguf" --k 0 \
      --max-tokens "$tokens" --prompt "Once upon a time" --json | sed -n 's/.*"tokens_per_s":\([0-9.eE+-]*\).*/\1/p')
    for d in stories260K-Q8_0.gguf stories260K-Q4_K_M.gguf stories260K-Q4_0.gguf stories260K-prune4-F32.gguf; do
      json=$("$EDGE" generate --verifier "mqtt://127.0.0.1:$PROXY" --target-id stories260K --draft "$M/$d" --k 4 \
        --max-tokens "$tokens" --prompt "Once upon a time" --json)
      tps=$(sed -n 's/.*"tokens_per_s":\([0-9.eE+-]*\).*/\1/p' <<<"$json")
      acc=$(sed -n 's/.*"mean_accepted":\([0-9.eE+-]*\).*/\1/p' <<<"$json")
      awk -v D="$delay" -v n="$d" -v t="$tps" -v b="$base" -v a="$acc" 'BEGIN { printf "%-8s %-32s %10.1f %10.1f %7.2fx %9.2f\n", D, n, t, b, t / b, a }'
    done
    kill "$PROXY_PID" 2>/dev/null; wait "$PROXY_PID" 2>/dev/null || true
  done
fi

if want 7; then
  echo
  echo "== 7. power sampler cost (sysfs fixture tree, replay, estimate) =="
  FIX="$(mktemp -d)"
  mkdir -p "$FIX/hwmon0"
  echo ina3221 > "$FIX/hwmon0/name"
  for n in 1 2 3; do echo "VDD_RAIL$n" > "$FIX/hwmon0/in${n}_label"; echo 5000 > "$FIX/hwmon0/in${n}_input"; echo 800 > "$FIX/hwmon0/curr${n}_input"; done
  awk 'BEGIN { print "time_s,watts"; for (i = 0; i < 20000; i++) printf "%.3f,%.3f\n", i * 0.01, 4 + (i % 50) / 25 }' > "$FIX/replay.csv"
  "$EDGE" bench power --seconds $([ $QUICK = 1 ] && echo 1 || echo 3) \
    --sources "hwmon:root=$FIX;replay:file=$FIX/replay.csv;estimate:board=rpi4b"
  rm -rf "$FIX"
fi

if want 8; then
  echo
  echo "== 8. model validation over MQTT: profile, then predicted vs measured goodput (greedy; delay per direction) =="
  start_verifier "$LOGS/validate.log" --model "$M/stories260K.gguf" --broker "$BROKER" --instance-id bench-validate --llama-dir "$LIBDIR" >/dev/null
  printf '%-8s %-26s %3s %11s %11s %8s %8s %8s\n' delay_ms draft K predicted measured error_% E_K_pred E_K_meas
  for delay in 0 20 100; do
    PROXY="$(free_port)"
    "$ROOT/out/bin/configspec-delayproxy" --listen "127.0.0.1:$PROXY" --upstream "127.0.0.1:$PORT" --delay-ms "$delay" 2>/dev/null &
    PROXY_PID=$!
    wait_port "$PROXY"
    URL="mqtt://127.0.0.1:$PROXY"
    if [ "$delay" = 0 ]; then rounds=400; timing=24; else rounds=$([ $QUICK = 1 ] && echo 60 || echo 150); timing=$([ $QUICK = 1 ] && echo 6 || echo 12); fi
    "$EDGE" profile --verifier "$URL" --target-id stories260K --drafts "$M/stories260K-Q8_0.gguf,$M/stories260K-Q4_0.gguf" \
      --max-rounds "$rounds" --timing-rounds "$timing" --out "$WORK/profile-$delay.json" --force >/dev/null
    tokens=$([ "$delay" = 100 ] && echo 384 || echo 1536)   # 1536 = every built-in prompt once
    for d in stories260K-Q8_0 stories260K-Q4_0; do
      for k in 1 4 8; do
        json=$("$EDGE" validate --profile "$WORK/profile-$delay.json" --verifier "$URL" --draft "$M/$d.gguf" --k "$k" --tokens "$tokens" --json)
        python3 - "$delay" "$d" "$k" "$json" <<'PY'
import json, sys
delay, draft, k, j = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
p, m = j["predicted"], j["measured"]
print(f"{delay:<8} {draft:<26} {k:>3} {p['goodput_tokens_per_s']:11.1f} {m['goodput_tokens_per_s']:11.1f} {j['goodput_error_pct']:+8.1f} {p['expected_accepted']:8.2f} {m['expected_accepted']:8.2f}")
PY
      done
    done
    "$EDGE" select --profile "$WORK/profile-$delay.json" | grep '^chosen:' | sed "s/^/  delay $delay ms: /"
    kill "$PROXY_PID" 2>/dev/null; wait "$PROXY_PID" 2>/dev/null || true
  done
  rm -rf "$WORK"
fi

if want 9; then
  echo "== 9. the fleet: board daemon start-up, idle CPU and memory; aggregator ingest from 1,000 simulated boards and API latency =="
  start_verifier "$LOGS/fleet-verifier.log" --model "$M/stories260K.gguf" --broker "$BROKER" --instance-id bench-fleet --llama-dir "$LIBDIR" >/dev/null
  cat >"$WORK/edge.json" <<JSON
{ "device_id": "bench-board", "board": "Bench Board", "state_dir": "$WORK/state", "broker": {"url": "$BROKER"},
  "verifier": {"target_id": "stories260K"}, "drafts": ["$M/stories260K-Q8_0.gguf"], "power": "none",
  "http": "http://127.0.0.1:$(free_port)", "llama_dir": "$LIBDIR", "fleet": {"adopt": false},
  "profile": {"max_rounds": 60, "timing_rounds": 4, "idle_baseline": "0s"} }
JSON
  echo "-- first start (profiles one draft):"
  "$EDGE" bench daemon --config "$WORK/edge.json" --idle-seconds "$([ $QUICK = 1 ] && echo 10 || echo 30)"
  echo "-- restart (the saved profile is fresh: no profiling):"
  "$EDGE" bench daemon --config "$WORK/edge.json" --idle-seconds "$([ $QUICK = 1 ] && echo 10 || echo 30)"
  SECONDS_LOAD=$([ $QUICK = 1 ] && echo 10 || echo 20)
  echo "-- aggregator: 1,000 boards at 1 metrics message per second each (30x the default 30 s interval):"
  "$ROOT/out/bin/configspec-aggregator" bench --broker "$BROKER" --devices 1000 --connections 20 --seconds "$SECONDS_LOAD" --rate 1
  echo "-- aggregator: 1,000 boards publishing as fast as the broker acknowledges (saturation; the load runs on the same cores):"
  "$ROOT/out/bin/configspec-aggregator" bench --broker "$BROKER" --devices 1000 --connections 20 --seconds "$SECONDS_LOAD"
  rm -rf "$WORK"
fi

if want 10; then
  echo "== 10. draft-length policies (profile of the shipped Q4_0 draft, a 25 tokens/s board; simulation with a 5 ms verifier, then real models) =="
  "$EDGE" profile --target "$M/stories260K.gguf" --drafts "$M/stories260K-Q4_0.gguf" --max-rounds 400 --timing-rounds 4 \
    --out "$WORK/profile.json" --force >/dev/null
  for seed in 1 2 3; do
    echo "-- two-state delay 20 ms <-> 150 ms one way, mean dwell 3 s, seed $seed:"
    "$EDGE" bench-policy --simulate --profile "$WORK/profile.json" --draft-tokens-per-s 25 --delay markov:20,150,3 --tokens 20000 --seed "$seed" \
      --policies static:2,static:6,profile,confidence:0.6,ucb-specstop,ucb-specstop:probe,oracle:late,oracle | tail -n +2
  done
  echo "-- fixed delays: the K ucb-specstop settles on against the best static K"
  for d in 0 20 50 100 200; do
    "$EDGE" bench-policy --simulate --profile "$WORK/profile.json" --draft-tokens-per-s 25 --delay "fixed:$d" --tokens 20000 \
      --policies ucb-specstop,ucb-specstop:probe,oracle | awk -v d="$d" '/^ucb-specstop /{printf "  %3d ms: ucb-specstop mean K %s, regret %s%%;", d, $4, $6} /^ucb-specstop:probe /{printf " with probe K %s, %s%%;", $4, $6} /^best static/{printf " best static %s\n", $3}'
  done
  # Real models: a private broker and verifier; every run has its own delay proxy in bench-policy; 8 runs at once.
  PORT10="$(free_port)"
  start_broker "$PORT10"
  start_verifier "$WORK/verifier.log" --model "$M/stories260K.gguf" --broker "mqtt://127.0.0.1:$PORT10" --instance-id bench-policy --llama-dir "$LIBDIR" >/dev/null
  REAL_TOKENS=$([ $QUICK = 1 ] && echo 1500 || echo 5000)
  echo
  echo "-- real models, two-state delay 20 ms <-> 150 ms one way, mean dwell 3 s, $REAL_TOKENS tokens per policy:"
  "$EDGE" bench-policy --verifier "mqtt://127.0.0.1:$PORT10" --draft-file "$M/stories260K-Q4_0.gguf" --profile "$WORK/profile.json" \
    --draft-tokens-per-s 25 --delay markov:20,150,3 --tokens "$REAL_TOKENS" --parallel 9 \
    --policies static:2,static:6,profile,confidence:0.6,ucb-specstop,ucb-specstop:probe,oracle:late,oracle | tail -n +2
  if [ $QUICK = 0 ]; then
    echo "-- real models, fixed delays: the K ucb-specstop settles on against the best static K (800 tokens per policy)"
    for d in 0 20 50 100 200; do
      "$EDGE" bench-policy --verifier "mqtt://127.0.0.1:$PORT10" --draft-file "$M/stories260K-Q4_0.gguf" --profile "$WORK/profile.json" \
        --draft-tokens-per-s 25 --delay "fixed:$d" --tokens 800 --parallel 10 --policies ucb-specstop,ucb-specstop:probe,oracle \
        | awk -v d="$d" '/^ucb-specstop /{printf "  %3d ms: ucb-specstop mean K %s, regret %s%%;", d, $4, $6} /^ucb-specstop:probe /{printf " with probe K %s, %s%%;", $4, $6} /^best static/{printf " best static %s\n", $3}'
    done
  fi
  stop_background
  rm -rf "$WORK"
fi

if want 11; then
  echo
  echo "== 11. pipelined speculation: best D=1 against best D>=2, drafting held to 25 tokens/s, real verifier through the delay proxy =="
  "$ROOT/scripts/bench/pipeline.sh" $([ $QUICK = 1 ] && echo --quick)
fi
