#!/usr/bin/env bash
# client_parity.sh: what a tbsim device costs next to a bare paho publisher
# (bench/mqttload), same broker (tbsim server on a loopback port), same count,
# interval (5 s), QoS 1 and payload size (the firmware's telemetry object is
# about 112 bytes). Both provision themselves first. Each process is measured
# from outside the same way: CPU between SAMPLE1 and SAMPLE2 seconds after it
# started (all online by then, checked) divided by the messages that window
# holds (CLIENTS x window / 5 s), and its resident memory at SAMPLE2 divided
# by CLIENTS (the process's fixed part included, which only counts against
# tbsim: its baseline is the larger). RUNS runs each, medians and ratios.
#
#   bench/client_parity.sh
#
# Environment: CLIENTS (5000), SAMPLE1 (40), SAMPLE2 (80), RUNS (3), SIZE (112).
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${CLIENTS:-5000} SAMPLE1=${SAMPLE1:-40} SAMPLE2=${SAMPLE2:-80} RUNS=${RUNS:-3} SIZE=${SIZE:-112}
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/tbsim" ./cmd/tbsim
go build -o "$work/mqttload" ./bench/mqttload
port=$((22000 + RANDOM % 1000))
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
rss() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }

# measure PID: prints "us_per_msg kib_per_client" for the window.
measure() {
	local pid=$1 t0=$2
	sleep $((SAMPLE1 - ($(date +%s) - t0)))
	local c1; c1=$(ticks "$pid")
	sleep $((SAMPLE2 - ($(date +%s) - t0)))
	local c2 r; c2=$(ticks "$pid"); r=$(rss "$pid")
	awk -v c="$((c2 - c1))" -v hz="$hz" -v n="$CLIENTS" -v w="$((SAMPLE2 - SAMPLE1))" -v r="$r" \
		'BEGIN { printf "%.1f %.1f\n", 1e6 * c / hz / (n * w / 5), r / n }'
}

for run in $(seq 1 "$RUNS"); do
	rm -f "$work/server.db"
	"$work/tbsim" server --mqtt "127.0.0.1:$port" --http "" --state "$work/server.db" >"$work/server.log" 2>&1 &
	spid=$!
	for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

	t0=$(date +%s)
	"$work/mqttload" -broker "tcp://127.0.0.1:$port" -clients "$CLIENTS" -interval 5s -duration "$((SAMPLE2 + 5))s" \
		-size "$SIZE" -provision tbsim-provision-key:tbsim-provision-secret >"$work/paho$run.json" &
	ppid=$!
	read -r pus pkib < <(measure "$ppid" "$t0")
	wait "$ppid"
	grep -q '"connect_errors":0' "$work/paho$run.json" || { echo "paho: connect errors: $(cat "$work/paho$run.json")" >&2; exit 1; }

	rm -rf "$work/s"
	t0=$(date +%s)
	"$work/tbsim" run --server "mqtt://127.0.0.1:$port" --provision-key tbsim-provision-key --provision-secret tbsim-provision-secret \
		--devices "$CLIENTS" --duration "$((SAMPLE2 + 5))s" --state-dir "$work/s" --json "$work/tbsim$run.json" >/dev/null 2>&1 &
	tpid=$!
	read -r tus tkib < <(measure "$tpid" "$t0")
	wait "$tpid" || true
	online=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["devices"]["online"])' "$work/tbsim$run.json")
	[ "$online" = "$CLIENTS" ] || { echo "tbsim: $online of $CLIENTS online" >&2; exit 1; }
	kill "$spid"; wait "$spid" 2>/dev/null || true
	echo "run $run: paho ${pus} us/msg ${pkib} KiB/client; tbsim ${tus} us/msg ${tkib} KiB/device" >&2
	echo "$pus $pkib $tus $tkib" >>"$work/runs"
done

med() { cut -d' ' -f"$1" "$work/runs" | sort -n | awk -v n="$RUNS" 'NR == int((n + 1) / 2)'; }
pus=$(med 1) pkib=$(med 2) tus=$(med 3) tkib=$(med 4)
printf '%-28s %12s %12s %8s\n' "client ($CLIENTS, 5 s, QoS 1)" "paho" "tbsim" "ratio"
awk -v a="$pus" -v b="$tus" 'BEGIN { printf "%-28s %9.1f us %9.1f us %7.2fx\n", "CPU per message", a, b, b / a }'
awk -v a="$pkib" -v b="$tkib" 'BEGIN { printf "%-28s %8.1f KiB %8.1f KiB %7.2fx\n", "memory per client", a, b, b / a }'
