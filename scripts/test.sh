#!/usr/bin/env bash
# Runs every test: installs what is missing (llama.cpp libraries, models), builds, tests, and prints
# "N passed, N failed, N skipped". Safe to run again. Extra arguments go to `dotnet test` (e.g. --filter Name~Gguf).
source "$(dirname "$0")/lib/common.sh"
ensure_dotnet
PLATFORM="$(host_platform)"

"$ROOT/scripts/fetch-llama.sh" "$PLATFORM"
# The ABI tests compile a stand-in library with the C compiler.
command -v cc >/dev/null || ensure_apt gcc libc6-dev
# MQTT tests run a real mosquitto broker (the MQTT client is MQTTnet, managed code: no native library).
ensure_apt mosquitto openssl
# Report pages are checked in a real headless Chromium.
ensure_apt chromium fonts-dejavu-core
# The aggregator's PostgreSQL store is tested against a throw-away cluster of the Debian server.
ensure_apt postgresql
# /metrics pages are checked with promtool (unpacked from Debian's prometheus package into lib/tools/).
export CONFIGSPEC_PROMTOOL
CONFIGSPEC_PROMTOOL="$(ensure_promtool)"
log "building the solution"
dotnet build "$ROOT/ConfigSpec.sln" -c Release -nologo -v quiet -clp:ErrorsOnly
"$ROOT/scripts/fetch-models.sh"

# The boards' build (linux-arm64 native AOT and its tarball; build.sh installs the cross toolchain, whose
# aarch64-linux-gnu-gcc the ABI test also uses), run by the Category=Arm64 tests under qemu as a Pi 4B and a Pi 5
# core; publish.ps1 is checked against it with PowerShell, a .NET tool in .cache/tools.
# CONFIGSPEC_TEST_ARM64=0 leaves them out: the log says so, and they are then not in the counts.
FILTER=()
if [ "${CONFIGSPEC_TEST_ARM64:-1}" = 0 ]; then
  log "CONFIGSPEC_TEST_ARM64=0: the arm64 tests (Category=Arm64) are left out of this run"
  FILTER=(--filter "Category!=Arm64")
else
  log "building the boards' linux-arm64 configspec-edge and its tarball"
  "$ROOT/scripts/build.sh" linux-arm64 --package
  export CONFIGSPEC_EMU_ARM64_LIBS
  CONFIGSPEC_EMU_ARM64_LIBS="$(ensure_arm64_emulator)"
  if [ ! -x "$ROOT/.cache/tools/pwsh" ]; then
    log "installing PowerShell 7.6.9 as a .NET tool into .cache/tools"
    dotnet tool install --tool-path "$ROOT/.cache/tools" PowerShell --version 7.6.9 >/dev/null
  fi
fi

export CONFIGSPEC_LLAMA_DIR="$ROOT/lib/llama/$PLATFORM"
export CONFIGSPEC_MODELS="$ROOT/models"
RESULTS="$ROOT/out/test-results"
rm -rf "$RESULTS" && mkdir -p "$RESULTS"
log "running tests"
status=0
dotnet test "$ROOT/ConfigSpec.sln" -c Release --no-build -nologo \
  --logger "trx;LogFileName=results.trx" --logger "console;verbosity=normal" \
  --results-directory "$RESULTS" "${FILTER[@]}" "$@" || status=$?

# One closing line for CI, summed over every test project's TRX counters.
python_free_sum() {
  local passed=0 failed=0 skipped=0 f line
  for f in "$RESULTS"/*.trx "$RESULTS"/*/*.trx; do
    [ -f "$f" ] || continue
    line="$(grep -o '<Counters [^>]*>' "$f" | head -1)"
    p=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$line"); passed=$((passed + ${p:-0}))
    x=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$line"); failed=$((failed + ${x:-0}))
    s=$(sed -n 's/.* notExecuted="\([0-9]*\)".*/\1/p' <<<"$line"); skipped=$((skipped + ${s:-0}))
  done
  echo "$passed passed, $failed failed, $skipped skipped"
}
# The failures again at the end, with the start of each message, so that the tail of a long log names them.
failures() {
  local f
  for f in "$RESULTS"/*.trx "$RESULTS"/*/*.trx; do
    [ -f "$f" ] || continue
    tr '\n' ' ' <"$f" | grep -o '<UnitTestResult [^>]*outcome="Failed"[^>]*>.\{0,1200\}' \
      | sed -e 's/.*testName="\([^"]*\)".*<Message>\([^<]*\).*/FAILED \1: \2/' -e 's/&quot;/"/g; s/&lt;/</g; s/&gt;/>/g; s/&amp;/\&/g' \
      | cut -c1-900 || true # no failed test: grep finds nothing, which is no error here
  done
}
failures
python_free_sum
exit $status
