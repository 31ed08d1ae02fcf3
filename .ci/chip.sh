#!/usr/bin/env bash
# The TinyGo / ESP32 section of .ci/run (issue 11): one behaviour under both
# compilers, and the firmware on the chip. Needs ../shared/tools (TinyGo 0.33
# and qemu-esp32c3); without them it says so loudly and returns 0, and with
# them any failing check fails CI.
#   1. every TinyGo-safe package's tests under TinyGo (riscv-qemu-16m)
#   2. the analyzers (evalorder, fatalreturn) over firmware/, espidf/ and,
#      with TinyGo's GOROOT and build tags, esp32/
#   3. esp32/cmd/fw linked for xiao-esp32c3 (sizes printed; fmt and reflect
#      must not be linked) and compiled to LLVM IR for esp32-coreboard-v2
#   4. NVS against ESP-IDF's own generator (PyPI esp-idf-nvs-partition-gen)
#   5. the firmware booted in qemu-esp32c3, and the OTA port run there (internal/chiptest)
set -euo pipefail
cd "$(dirname "$0")/.."
tools=../shared/tools
if [ ! -x "$tools/tinygo" ] || [ ! -x "$tools/qemu-esp32c3" ]; then
  echo "=================================================================="
  echo "SKIPPED: TinyGo/ESP32 checks: $tools/tinygo or $tools/qemu-esp32c3 is missing."
  echo "SKIPPED: not run: TinyGo tests, analyzers on esp32/, C3 link, Xtensa IR, NVS vs ESP-IDF, QEMU boot."
  echo "=================================================================="
  exit 0
fi
start=$(date +%s)
tinygo=$tools/tinygo
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
step() { echo "--- chip: $* ($(( $(date +%s) - start ))s)"; }

step "TinyGo $($tinygo version | awk '{print $3}') (first use installs it)"
step "tests under TinyGo"
# (LLVM 16 names each RISC-V feature it ignores; the wrapper drops the first
# half of that line, this the rest.)
# TinyGo's default test stack (4 KB on riscv-qemu) on purpose: a parser that
# recursed per nesting level overflowed it silently and hung under QEMU.
timeout 600 "$tinygo" test -target=riscv-qemu-16m ./firmware/... ./espidf/... 2>&1 | grep -v '^ (ignoring feature)$'

step "analyzers (gc view)"
go build -o "$tmp/tbvet" ./internal/analysis/cmd/tbvet
"$tmp/tbvet" ./firmware/... ./espidf/...
step "analyzers (TinyGo view: esp32/ with TinyGo's GOROOT and tags)"
info=$("$tinygo" info -target=xiao-esp32c3)
tgoroot=$(echo "$info" | awk -F': *' '/cached GOROOT/ {print $2}')
tags=$(echo "$info" | awk -F': *' '/build tags/ {print $2}' | sed 's/serial.usb/serial.uart/; s/ /,/g')
go123=$(cd / && GOTOOLCHAIN=go1.23.12 GOFLAGS= go env GOROOT)
sed -E 's/^go [0-9.]+$/go 1.23/; /^toolchain /d' go.mod > "$tmp/go.mod"
cp go.sum "$tmp/go.sum"
env PATH="$go123/bin:$PATH" GOTOOLCHAIN=local GOROOT="$tgoroot" GOOS=linux GOARCH=arm CGO_ENABLED=0 GOFLAGS= \
  "$tmp/tbvet" -modfile "$tmp/go.mod" -tags "$tags" ./esp32/... ./firmware/... ./espidf/...

step "esp32/cmd/fw for xiao-esp32c3 (ESP32-C3)"
esp32/build.sh "$tmp/fw.bin" ./esp32/cmd/fw -size=full > "$tmp/fw-size.txt"
grep -E '^ +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ \| +[0-9]+ +[0-9]+ \| (total|github.com/tbsim)' "$tmp/fw-size.txt"
if grep -E '\| (fmt|encoding/json|unicode)$' "$tmp/fw-size.txt"; then
  echo "the firmware links fmt or unicode tables again (see issue 11)"; exit 1
fi
if reflect=$(awk '$NF=="reflect" {print $6}' "$tmp/fw-size.txt") && [ -n "$reflect" ] && [ "$reflect" -gt 1024 ]; then
  echo "the firmware links $reflect bytes of reflect (interface compares, sort.Slice, errors.Is...; see issue 11)"; exit 1
fi
step "esp32/cmd/fwsize (the state machine alone)"
esp32/build.sh "$tmp/fwsize.bin" ./esp32/cmd/fwsize -size=short
step "esp32/cmd/fw to LLVM IR for esp32-coreboard-v2 (Xtensa: front end only)"
"$tinygo" build -target=esp32-coreboard-v2 -o "$tmp/fw.ll" ./esp32/cmd/fw 2> >(grep -v "is not a recognized processor" >&2)
ls -l "$tmp/fw.ll" | awk '{print "LLVM IR:", $5, "bytes"}'

step "NVS: ESP-IDF's nvs_partition_gen.py writes testdata/idf/*.bin byte for byte"
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install -q esp-idf-nvs-partition-gen==0.3.0
for csv in espidf/nvs/testdata/idf/*.csv; do
  "$tmp/venv/bin/python" -m esp_idf_nvs_partition_gen generate "$csv" "$tmp/idf.bin" 0x5000 > /dev/null
  cmp "$tmp/idf.bin" "${csv%.csv}.bin"
  echo "ESP-IDF generator == ${csv%.csv}.bin"
done
go test -count=1 -run 'IDF' -v ./espidf/nvs | grep -E '^(--- |ok|FAIL)'

step "boot in qemu-esp32c3"
TBSIM_CHIP_TESTS=1 go test -count=1 -v ./internal/chiptest | grep -E '^(--- |ok|FAIL|\s+boot_test)'
step "done: TinyGo/ESP32 checks passed in $(( $(date +%s) - start ))s"
