#!/usr/bin/env bash
# Installs configspec-edge as a systemd service on a board (run as root on the board).
# Usage: sudo hw/install-edge.sh [--dry-run] [BIN_DIR]
#   BIN_DIR: the folder holding configspec-edge and the llama.cpp libraries: an unpacked board tarball's top folder
#            (the default, the folder above this script, when it holds configspec-edge) or a published out/<runtime>/.
#   --dry-run: list what would be installed and run, change nothing (no root needed).
# Creates the configspec user (groups i2c, video), installs the executable and libraries to /opt/configspec, the unit,
# an example /etc/configspec/edge.json (kept if present), and enables the service. Safe to run again (an upgrade).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
DRY=0 BIN=""
for arg in "$@"; do
  case "$arg" in
    --dry-run|-n) DRY=1 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    -*) echo "install-edge.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
    *) [ -z "$BIN" ] || { echo "install-edge.sh: one BIN_DIR only" >&2; exit 2; }; BIN="$arg" ;;
  esac
done
if [ -z "$BIN" ]; then
  [ -x "$HERE/../configspec-edge" ] || { echo "usage: $0 [--dry-run] BIN_DIR (no configspec-edge beside hw/; give the published folder)" >&2; exit 2; }
  BIN="$HERE/.."
fi
BIN="$(cd "$BIN" && pwd)"
[ -x "$BIN/configspec-edge" ] || { echo "$BIN/configspec-edge not found: publish first (scripts/build.sh linux-arm64 or publish.ps1)" >&2; exit 1; }
shopt -s nullglob
LIBS=("$BIN"/*.so)
[ ${#LIBS[@]} -gt 0 ] || { echo "$BIN has no llama.cpp libraries (*.so): publish with scripts/build.sh, which copies them" >&2; exit 1; }

# The executable's architecture (ELF e_machine at byte 18) against this machine's.
machine_of() {
  case "$(od -An -tx1 -j18 -N2 "$1" | tr -d ' \n')" in
    b700) echo aarch64 ;;
    3e00) echo x86_64 ;;
    *) echo unknown ;;
  esac
}
ARCH="$(machine_of "$BIN/configspec-edge")"
if [ "$ARCH" != "$(uname -m)" ]; then
  msg="$BIN/configspec-edge is built for $ARCH, this machine is $(uname -m)"
  [ "$DRY" = 1 ] || { echo "install-edge.sh: $msg: use the $(uname -m) build" >&2; exit 1; }
  echo "note: $msg (a dry run lists the steps anyway)"
fi

run() {
  if [ "$DRY" = 1 ]; then printf '  %s\n' "$*"; else "$@"; fi
}
[ "$DRY" = 1 ] && echo "dry run: would install from $BIN:"
[ "$DRY" = 1 ] || [ "$(id -u)" = 0 ] || { echo "run as root (sudo), or with --dry-run" >&2; exit 1; }

for group in i2c video; do getent group "$group" >/dev/null || run groupadd --system "$group"; done
id configspec >/dev/null 2>&1 || run useradd --system --home-dir /var/lib/configspec --shell /usr/sbin/nologin --groups i2c,video configspec
run install -d -m 0755 /opt/configspec /etc/configspec
run install -m 0755 "$BIN/configspec-edge" /opt/configspec/configspec-edge
for lib in "${LIBS[@]}"; do run install -m 0644 "$lib" "/opt/configspec/$(basename "$lib")"; done
if [ -f /etc/configspec/edge.json ]; then
  echo "keeping /etc/configspec/edge.json"
else
  run install -m 0640 -g configspec "$HERE/config/edge.json" /etc/configspec/edge.json
fi
run install -m 0644 "$HERE/systemd/configspec-edge.service" /etc/systemd/system/configspec-edge.service
if [ "$DRY" = 1 ]; then
  printf '  %s\n' "/opt/configspec/configspec-edge system" "/opt/configspec/configspec-edge run --config /etc/configspec/edge.json --check" \
    "systemctl daemon-reload" "systemctl enable --now configspec-edge"
  exit 0
fi
/opt/configspec/configspec-edge system || echo "configspec-edge system reported a problem (above): llama.cpp must load before the service can draft" >&2
/opt/configspec/configspec-edge run --config /etc/configspec/edge.json --check || echo "edit /etc/configspec/edge.json, then: systemctl restart configspec-edge" >&2
systemctl daemon-reload
systemctl enable --now configspec-edge
echo "installed; follow it with: journalctl -u configspec-edge -f   and   systemctl status configspec-edge"
