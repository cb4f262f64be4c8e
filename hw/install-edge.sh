#!/usr/bin/env bash
# Installs configspec-edge as a systemd service on a board (run as root on the board).
# Usage: sudo hw/install-edge.sh BIN_DIR      (BIN_DIR: the published out/bin/ copied to the board)
# Creates the configspec user (groups i2c, video), installs the binaries and llama.cpp libraries to
# /opt/configspec, the unit, an example /etc/configspec/edge.json (kept if present), and enables the service.
set -euo pipefail
BIN="${1:?usage: $0 BIN_DIR (the published out/bin/)}"
HERE="$(cd "$(dirname "$0")" && pwd)"
[ "$(id -u)" = 0 ] || { echo "run as root (sudo)" >&2; exit 1; }
[ -x "$BIN/configspec-edge" ] || { echo "$BIN/configspec-edge not found: publish first (scripts/build.sh or publish.ps1)" >&2; exit 1; }
for group in i2c video; do getent group "$group" >/dev/null || groupadd --system "$group"; done
id configspec >/dev/null 2>&1 || useradd --system --home-dir /var/lib/configspec --shell /usr/sbin/nologin --groups i2c,video configspec
install -d -m 0755 /opt/configspec /etc/configspec
install -m 0755 "$BIN/configspec-edge" /opt/configspec/
for lib in "$BIN"/*.so; do install -m 0644 "$lib" /opt/configspec/; done
[ -f /etc/configspec/edge.json ] || install -m 0640 -g configspec "$HERE/config/edge.json" /etc/configspec/edge.json
install -m 0644 "$HERE/systemd/configspec-edge.service" /etc/systemd/system/configspec-edge.service
/opt/configspec/configspec-edge run --config /etc/configspec/edge.json --check || echo "edit /etc/configspec/edge.json, then: systemctl restart configspec-edge" >&2
systemctl daemon-reload
systemctl enable --now configspec-edge
echo "installed; follow it with: journalctl -u configspec-edge -f   and   systemctl status configspec-edge"
