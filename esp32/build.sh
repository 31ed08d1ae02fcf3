#!/usr/bin/env bash
# esp32/build.sh: build a program for the ESP32-C3 (xiao-esp32c3 board target)
# with tbsim's linker fix, UART0 as the console and a 16 KB goroutine stack.
#
#   esp32/build.sh OUT.bin [PACKAGE] [extra tinygo flags...]   # default PACKAGE ./esp32/cmd/fw
#
# TINYGO overrides the TinyGo command (default ../shared/tools/tinygo).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tinygo=${TINYGO:-$repo/../shared/tools/tinygo}
out=$1; shift
pkg=${1:-./esp32/cmd/fw}; [ $# -gt 0 ] && shift
root=$("$tinygo" env TINYGOROOT)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# TinyGo resolves a target's linkerscript relative to TINYGOROOT.
cat > "$dir/esp32c3-tbsim.json" <<JSON
{
	"inherits": ["xiao-esp32c3"],
	"linkerscript": "$(realpath --relative-to="$root" "$repo/esp32/target/esp32c3-tbsim.ld")"
}
JSON
cd "$repo"
# The goroutine stack: with TinyGo's 2 KB default for the C3 the firmware's
# full loop (netstack, MQTT, NVS) dies ("out of memory" panic in
# internal/chiptest TestFullLoop, 2026-12-02). The JSON reader no longer
# recurses, so this is not about payload nesting.
exec "$tinygo" build -target="$dir/esp32c3-tbsim.json" -serial=uart -stack-size=16KB -o "$out" "$@" "$pkg"
