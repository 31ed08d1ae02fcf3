#!/usr/bin/env bash
# server_vs_mosquitto.sh: the embedded server's CPU per message and memory per
# connection next to mosquitto's, under the same load from the same publisher
# (bench/mqttload), in the same run: paced (CLIENTS clients, one QoS 1
# message every 5 s each) and saturating (SAT_CLIENTS clients sending
# SAT_MESSAGES back to back). Each measurement runs RUNS times; the table
# gives medians and the ratio tbsim/mosquitto.
#
#   bench/server_vs_mosquitto.sh            # installs Debian's mosquitto if missing
#
# Environment: CLIENTS (5000), DURATION (60s), SAT_CLIENTS (1000),
# SAT_MESSAGES (300), RUNS (3), SIZE (200).
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${CLIENTS:-5000} DURATION=${DURATION:-60s} SAT_CLIENTS=${SAT_CLIENTS:-1000} SAT_MESSAGES=${SAT_MESSAGES:-300}
RUNS=${RUNS:-3} SIZE=${SIZE:-200}
if ! command -v mosquitto >/dev/null; then
	echo "installing mosquitto (Debian)" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null
fi
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/tbsim" ./cmd/tbsim
go build -o "$work/mqttload" ./bench/mqttload
port=$((21000 + RANDOM % 1000))

start_mosquitto() {
	printf 'listener %d 127.0.0.1\nallow_anonymous true\nmax_connections -1\nmax_inflight_messages 0\nmax_queued_messages 10000\npersistence false\n' "$port" >"$work/mosq.conf"
	mosquitto -c "$work/mosq.conf" >"$work/mosq.log" 2>&1 &
	pid=$!
}
start_tbsim() {
	rm -f "$work/server.db"
	"$work/tbsim" server --mqtt "127.0.0.1:$port" --http "" --state "$work/server.db" >"$work/tbsim.log" 2>&1 &
	pid=$!
}
wait_port() {
	for _ in $(seq 100); do
		(echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "nothing listens on $port" >&2; return 1
}
# one SERVER MODE RUN -> a JSON line in $work/SERVER-MODE-RUN.json
one() {
	local server=$1 mode=$2 run=$3 extra=()
	"start_$server"
	wait_port
	[ "$server" = tbsim ] && extra=(-provision tbsim-provision-key:tbsim-provision-secret)
	if [ "$mode" = paced ]; then
		"$work/mqttload" -broker "tcp://127.0.0.1:$port" -clients "$CLIENTS" -interval 5s -duration "$DURATION" \
			-size "$SIZE" -server-pid "$pid" "${extra[@]}" >"$work/$server-$mode-$run.json"
	else
		"$work/mqttload" -broker "tcp://127.0.0.1:$port" -clients "$SAT_CLIENTS" -messages "$SAT_MESSAGES" \
			-size "$SIZE" -server-pid "$pid" "${extra[@]}" >"$work/$server-$mode-$run.json"
	fi
	kill -INT "$pid"; wait "$pid" 2>/dev/null || true
	echo "$server $mode run $run: $(cat "$work/$server-$mode-$run.json")" >&2
}
for run in $(seq 1 "$RUNS"); do
	for mode in paced saturating; do
		for server in mosquitto tbsim; do
			one "$server" "$mode" "$run"
		done
	done
done
python3 - "$work" "$RUNS" <<'PY'
import json, statistics, sys
work, runs = sys.argv[1], int(sys.argv[2])
def med(server, mode, key):
    return statistics.median(json.load(open(f"{work}/{server}-{mode}-{r}.json"))[key] for r in range(1, runs + 1))
print(f"{'load':12s} {'figure':28s} {'tbsim':>10s} {'mosquitto':>10s} {'ratio':>7s}")
for mode in ("paced", "saturating"):
    for key, label in (("server_us_per_msg", "server CPU µs/message"), ("server_kib_per_conn", "server KiB/connection"),
                       ("puback_p99_ms", "PUBACK p99 ms"), ("rate_per_s", "messages/s")):
        t, m = med("tbsim", mode, key), med("mosquitto", mode, key)
        print(f"{mode:12s} {label:28s} {t:10.1f} {m:10.1f} {t / m if m else float('nan'):7.2f}")
PY
