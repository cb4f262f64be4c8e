# Shared helpers for the project's scripts. Source it; do not run it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SHARED_MODELS="${CONFIGSPEC_SHARED_MODELS:-$ROOT/../shared/models}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The llama.cpp platform folder name for this machine (npm @node-llama-cpp naming).
host_platform() {
  case "$(uname -m)" in
    x86_64) echo linux-x64 ;;
    aarch64|arm64) echo linux-arm64 ;;
    armv7l) echo linux-armv7l ;;
    *) die "unsupported machine architecture $(uname -m)" ;;
  esac
}

host_rid() {
  case "$(uname -m)" in
    x86_64) echo linux-x64 ;;
    aarch64|arm64) echo linux-arm64 ;;
    *) die "no .NET runtime identifier for $(uname -m)" ;;
  esac
}

# ensure_apt PKG...: installs Debian packages that are missing (needs root or sudo).
ensure_apt() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  log "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ensure_cross_toolchain RUNTIME: what native AOT needs to link for another architecture from this one: clang (the
# AOT linker driver, which finds the cross gcc by itself; no sysroot) and Debian's cross C library and GCC runtime.
ensure_cross_toolchain() {
  case "$1" in
    linux-arm64) ensure_apt clang gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu libc6-dev-arm64-cross ;;
    *) die "no cross toolchain known for $1" ;;
  esac
}

# The product version (Directory.Build.props), which every executable reports and the tarball is named by.
product_version() {
  local v
  v="$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' "$ROOT/Directory.Build.props" | head -1)"
  [ -n "$v" ] || die "no <Version> in Directory.Build.props"
  echo "$v"
}

# The folder holding the arm64 libraries the emulated .NET runtime needs beyond the cross C library (libssl3: the
# runtime loads OpenSSL at start; boards have it installed).
EMU_ARM64="$ROOT/lib/emu/linux-arm64"

# ensure_arm64_emulator: qemu-user for running the boards' build on this machine, and libssl3:arm64 unpacked into
# lib/emu/linux-arm64 (downloaded with apt, never installed: a second arm64 C library under /usr/lib/aarch64-linux-gnu
# makes emulated programs hang). Prints the folder for LD_LIBRARY_PATH under the emulator.
ensure_arm64_emulator() {
  local libdir="$EMU_ARM64/usr/lib/aarch64-linux-gnu"
  if [ "$(uname -m)" = aarch64 ]; then echo ""; return 0; fi
  ensure_apt qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross
  if [ ! -f "$libdir/libssl.so.3" ] || [ ! -f "$libdir/libcrypto.so.3" ]; then
    local sudo="" work
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
      log "adding the arm64 architecture to apt's sources (for apt-get download only)"
      $sudo dpkg --add-architecture arm64
      $sudo apt-get update -qq >/dev/null
    fi
    work="$(mktemp -d)"
    chmod 777 "$work" # apt's sandbox user writes the download
    log "fetching libssl3:arm64 for the emulator"
    # A stale package list names a version the mirror no longer has: refresh it once and retry.
    download() { (cd "$work" && apt-get download -qq libssl3:arm64 >/dev/null 2>&1); }
    download || { $sudo apt-get update -qq >/dev/null && download; } || die "could not download libssl3:arm64 with apt-get download"
    rm -rf "$EMU_ARM64" && mkdir -p "$EMU_ARM64"
    dpkg-deb -x "$work"/libssl3_*_arm64.deb "$EMU_ARM64"
    rm -rf "$work"
    [ -f "$libdir/libssl.so.3" ] || die "libssl3:arm64 did not hold usr/lib/aarch64-linux-gnu/libssl.so.3"
  fi
  echo "$libdir"
}

# promtool (Debian prometheus), unpacked into lib/tools/prometheus without installing the server; echoes its path.
PROMTOOL="$ROOT/lib/tools/prometheus/usr/bin/promtool"
ensure_promtool() {
  if command -v promtool >/dev/null; then command -v promtool; return 0; fi
  if [ ! -x "$PROMTOOL" ]; then
    local work sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    work="$(mktemp -d)"
    chmod 777 "$work" # apt's sandbox user writes the download
    log "fetching promtool (Debian prometheus, unpacked only)"
    download() { (cd "$work" && apt-get download -qq prometheus >/dev/null 2>&1); }
    download || { $sudo apt-get update -qq >/dev/null && download; } || die "could not download prometheus with apt-get download"
    rm -rf "$ROOT/lib/tools/prometheus" && mkdir -p "$ROOT/lib/tools/prometheus"
    dpkg-deb -x "$work"/prometheus_*.deb "$ROOT/lib/tools/prometheus"
    rm -rf "$work"
    [ -x "$PROMTOOL" ] || die "the prometheus package did not hold usr/bin/promtool"
  fi
  echo "$PROMTOOL"
}

ensure_dotnet() {
  command -v dotnet >/dev/null || die "the .NET SDK is required (dotnet not on PATH); see README.md"
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# verify_sha256 FILE EXPECTED: fails naming the file when the digest differs.
verify_sha256() {
  local actual
  actual="$(sha256_of "$1")"
  [ "$actual" = "$2" ] || die "checksum mismatch for $1: got $actual, expected $2"
}

# --- a private broker and background programs (demo, benchmarks) ---
BACKGROUND_PIDS=() STEP_PIDS=() CLEANUP_DIRS=()

# kill_tree PID [SIGNAL]: the process and everything it started (a build's msbuild, dotnet publish, ilc, clang).
kill_tree() {
  local child
  for child in $(pgrep -P "$1" 2>/dev/null); do kill_tree "$child" "${2:-TERM}"; done
  kill "-${2:-TERM}" "$1" 2>/dev/null || true
}

stop_background() {
  local pid
  for pid in "${STEP_PIDS[@]}" "${BACKGROUND_PIDS[@]}"; do kill_tree "$pid"; done
  for pid in "${STEP_PIDS[@]}" "${BACKGROUND_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  BACKGROUND_PIDS=() STEP_PIDS=()
  [ ${#CLEANUP_DIRS[@]} -eq 0 ] || rm -rf "${CLEANUP_DIRS[@]}"
  CLEANUP_DIRS=()
}

# INT and TERM stop everything the script started, at any moment (a build included), and end it.
on_signal() {
  trap - INT TERM
  printf '\n' >&2
  log "stopping on SIG$1: everything this script started"
  stop_background
  trap - EXIT
  [ "$1" = INT ] && exit 130 || exit 143
}
trap stop_background EXIT
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM

# run_step CMD...: runs a long step (a build, a sleep) so that a signal to the script interrupts it at once: bash
# runs a trap only after a foreground command ends, but while it waits for a background one it runs it straight away.
run_step() {
  "$@" &
  local pid=$! rc=0 p kept=()
  STEP_PIDS+=("$pid")
  wait "$pid" || rc=$?
  for p in "${STEP_PIDS[@]}"; do [ "$p" = "$pid" ] || kept+=("$p"); done
  STEP_PIDS=("${kept[@]}")
  return "$rc"
}

# temp_dir VAR: a temporary folder in VAR, removed when the script ends, however it ends.
temp_dir() {
  local __made # a name no caller passes: printf -v would set this local instead of the caller's variable
  __made="$(mktemp -d "${TMPDIR:-/tmp}/configspec.XXXXXX")"
  CLEANUP_DIRS+=("$__made")
  printf -v "$1" '%s' "$__made"
}

# free_port: a TCP port on loopback nobody listens on.
free_port() {
  local port
  for _ in $(seq 50); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return 0; fi
  done
  die "no free loopback port found"
}

wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  die "nothing listens on 127.0.0.1:$1 after 10 s"
}

# start_broker PORT: a private mosquitto on loopback (no persistence, Nagle off), stopped on exit.
start_broker() {
  command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || ensure_apt mosquitto
  local dir
  temp_dir dir
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nset_tcp_nodelay true\n' "$1" > "$dir/mosquitto.conf"
  "$(command -v mosquitto || echo /usr/sbin/mosquitto)" -c "$dir/mosquitto.conf" >"$dir/mosquitto.log" 2>&1 &
  BACKGROUND_PIDS+=($!)
  wait_port "$1"
}

# start_verifier LOG ARGS...: configspec-verifier in the background; waits until it serves.
start_verifier() {
  local log="$1"; shift
  "$ROOT/out/bin/configspec-verifier" "$@" >"$log" 2>&1 &
  local pid=$!
  BACKGROUND_PIDS+=($pid)
  for _ in $(seq 100); do
    grep -q "serving target" "$log" 2>/dev/null && { echo "$pid"; return 0; }
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; die "configspec-verifier exited"; }
    sleep 0.1
  done
  die "configspec-verifier did not start (see $log)"
}
