#!/usr/bin/env bash
# Creates a private CA, the broker's certificate, a password entry per user and the mosquitto configuration
# for a ConfigSpec fleet in DIR (safe to run again: existing keys and passwords are kept).
# Usage: hw/mosquitto/setup-broker.sh DIR [--port 8883] [--bind 0.0.0.0] [--host broker.example.net] [--user NAME:PASSWORD ...]
# Then: mosquitto -c DIR/mosquitto.conf; boards use mqtts://HOST:PORT with ca_file DIR/ca.crt and their own user.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
[ $# -ge 1 ] || { echo "usage: $0 DIR [--port P] [--bind ADDR] [--host NAME] [--user NAME:PASSWORD ...]" >&2; exit 2; }
DIR="$(mkdir -p "$1" && cd "$1" && pwd)"; shift
PORT=8883 BIND=0.0.0.0 HOST=localhost USERS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --port) PORT="$2"; shift 2 ;;
    --bind) BIND="$2"; shift 2 ;;
    --host) HOST="$2"; shift 2 ;;
    --user) USERS+=("$2"); shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
command -v openssl >/dev/null || { echo "openssl is needed (apt install openssl)" >&2; exit 1; }
command -v mosquitto_passwd >/dev/null || [ -x /usr/bin/mosquitto_passwd ] || { echo "mosquitto_passwd is needed (apt install mosquitto)" >&2; exit 1; }
cd "$DIR"
umask 077
if [ ! -f ca.key ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=ConfigSpec fleet CA" -keyout ca.key -out ca.crt 2>/dev/null
fi
if [ ! -f server.key ]; then
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$HOST" -keyout server.key -out server.csr 2>/dev/null
  printf 'subjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1\n' "$HOST" > server.ext
  openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 -extfile server.ext -out server.crt 2>/dev/null
  rm -f server.csr server.ext
fi
chmod 644 ca.crt server.crt
touch passwd
for entry in "${USERS[@]}"; do
  name="${entry%%:*}" password="${entry#*:}"
  mosquitto_passwd -b passwd "$name" "$password"
done
mkdir -p data
cp "$HERE/acl" acl
sed -e "s#@DIR@#$DIR#g" -e "s#@PORT@#$PORT#g" -e "s#@BIND@#$BIND#g" "$HERE/configspec.conf.in" > mosquitto.conf
# The Debian service runs mosquitto as the mosquitto user: let it read its keys and write its persistence.
if [ "$(id -u)" = 0 ] && id mosquitto >/dev/null 2>&1; then chown -R mosquitto: "$DIR"; fi
echo "broker configuration in $DIR/mosquitto.conf (TLS on $BIND:$PORT, ${#USERS[@]} user(s) added); start: mosquitto -c $DIR/mosquitto.conf"
