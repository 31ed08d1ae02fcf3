#!/usr/bin/env bash
# embedded.sh: tbsim against its own embedded server, as `tbsim run` runs by
# default. Three measurements, RUNS times each, medians printed:
#   fleet: DEVICES (10000) devices, telemetry every 5 s, DURATION (90s): peak
#          RSS, steady CPU (the last half of the run), publish→PUBACK once all
#          are online (p50/p99), generator label;
#   ota:   OTA_DEVICES (1000) devices take a 1 MiB image released at once
#          (--ota-pack-size), with 4 KiB and with 64 KiB chunks: aggregate MB/s
#          and CPU ms per MiB delivered (device and server together);
#   limit: this machine's ceiling for the same bytes, SHA-256 plus one copy;
#   scale: SCALE_DEVICES (100000) devices over the in-memory transport,
#          telemetry every 30 s, 240 s: online, peak RSS, errors, generator
#          label (not part of "everything": 4.5 min and about 17 GiB a run).
#
#   bench/embedded.sh            # fleet, ota, limit
#   ONLY=ota bench/embedded.sh   # one part
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICES=${DEVICES:-10000} DURATION=${DURATION:-90s} OTA_DEVICES=${OTA_DEVICES:-1000} RUNS=${RUNS:-3} ONLY=${ONLY:-}
SCALE_DEVICES=${SCALE_DEVICES:-100000}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/tbsim" ./cmd/tbsim
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

fleet() {
	for run in $(seq 1 "$RUNS"); do
		rm -rf "$work/s"
		/usr/bin/time -f '%M' -o "$work/rss" "$work/tbsim" run --devices "$DEVICES" --duration "$DURATION" \
			--state-dir "$work/s" --json "$work/fleet$run.json" >/dev/null 2>&1 &
		sleep 1
		pid=$(pgrep -n -f "$work/tbsim run --devices") || { echo "tbsim did not start" >&2; exit 1; }
		half=$(( ${DURATION%s} / 2 ))
		sleep "$half"; t0=$(ticks "$pid"); s0=$(date +%s.%N)
		sleep $(( half - 5 )); t1=$(ticks "$pid"); s1=$(date +%s.%N)
		wait
		python3 - "$work/fleet$run.json" "$(tail -1 "$work/rss")" "$t0" "$t1" "$s0" "$s1" "$hz" "$run" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); rss, t0, t1, s0, s1, hz, run = int(sys.argv[2]), *map(float, sys.argv[3:9])
st = s["latency_ms"].get("publish_steady", {})
cpu = (t1 - t0) / hz / (s1 - s0)
print(f"fleet run {int(run)}: online {s['devices']['online']}/{s['devices']['total']}, peak RSS {rss/1024/1024:.2f} GiB, "
      f"steady CPU {cpu:.2f} core, publish once all online p50 {st.get('p50',0):.2f} ms p99 {st.get('p99',0):.2f} ms "
      f"(count {st.get('count',0)}), generator bound {s['generator']['bound']}")
json.dump({"rss_gib": rss/1024/1024, "cpu": cpu, "p50": st.get("p50", 0), "p99": st.get("p99", 0)}, open(sys.argv[1] + ".fig", "w"))
PY
	done
	python3 - "$work" "$RUNS" <<'PY'
import json, statistics, sys
f = [json.load(open(f"{sys.argv[1]}/fleet{r}.json.fig")) for r in range(1, int(sys.argv[2]) + 1)]
m = lambda k: statistics.median(x[k] for x in f)
print(f"fleet median of {len(f)}: peak RSS {m('rss_gib'):.2f} GiB, steady CPU {m('cpu'):.2f} core, publish p50 {m('p50'):.2f} ms p99 {m('p99'):.2f} ms")
PY
}

ota() {
	"$work/tbsim" firmware build --version 1.1.0 --size 1048576 -o "$work/fw.bin" >/dev/null
	for chunk in 4096 65536; do
		for run in $(seq 1 "$RUNS"); do
			rm -rf "$work/s"
			# Devices come online in the first seconds; the image is released at
			# 15 s to all at once. CPU is counted over the download window only.
			start=$(date +%s.%N)
			"$work/tbsim" run --devices "$OTA_DEVICES" --ota "$work/fw.bin" --ota-version 1.1.0 --ota-after 15s \
				--ota-pack-size "$OTA_DEVICES" --chunk-size "$chunk" --duration 75s --wifi-connect 100ms-500ms \
				--state-dir "$work/s" --json "$work/ota$chunk-$run.json" >/dev/null 2>&1 &
			pid=$!
			# The process's CPU ticks four times a second, to take the CPU of
			# the download window alone (the run goes on with telemetry after).
			while [ -r "/proc/$pid/stat" ]; do
				echo "$(awk -v s="$start" -v n="$(date +%s.%N)" 'BEGIN { print n - s }') $(ticks "$pid" 2>/dev/null || echo -)"
				sleep 0.25
			done >"$work/ticks" 2>/dev/null
			wait "$pid" || true
			python3 - "$work/ota$chunk-$run.json" "$work/ticks" "$hz" "$chunk" "$run" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); hz = float(sys.argv[3])
o = s["ota"]
samples = [(float(t), float(c)) for t, c in (l.split() for l in open(sys.argv[2])) if c != "-"]
# From the release (--ota-after 15s) to the last device updated.
t0, t1 = 15.0, 15.0 + o["window_ms"] / 1000
c0 = max((c for t, c in samples if t <= t0), default=samples[0][1])
c1 = min((c for t, c in samples if t >= t1), default=samples[-1][1])
ms_per_mib = 1000 * (c1 - c0) / hz / (o["bytes"] / (1 << 20))
print(f"ota {sys.argv[4]}-byte chunks run {sys.argv[5]}: {o['updated']} updated, {o['bytes']/1e6:.0f} MB in {o['window_ms']/1000:.2f} s = {o['mb_per_s']:.1f} MB/s, {ms_per_mib:.1f} ms CPU per MiB")
json.dump({"mbps": o["mb_per_s"], "ms": ms_per_mib}, open(sys.argv[1] + ".fig", "w"))
PY
		done
	done
	python3 - "$work" "$RUNS" <<'PY'
import json, statistics, sys
for chunk in (4096, 65536):
    f = [json.load(open(f"{sys.argv[1]}/ota{chunk}-{r}.json.fig")) for r in range(1, int(sys.argv[2]) + 1)]
    print(f"ota {chunk}-byte chunks median of {len(f)}: {statistics.median(x['mbps'] for x in f):.1f} MB/s aggregate, "
          f"{statistics.median(x['ms'] for x in f):.1f} ms CPU per MiB")
PY
}

scale() {
	for run in $(seq 1 "$RUNS"); do
		rm -rf "$work/s"
		/usr/bin/time -f '%M' -o "$work/rss" "$work/tbsim" run --devices "$SCALE_DEVICES" --telemetry-interval 30s \
			--duration 240s --state-dir "$work/s" --json "$work/scale$run.json" >/dev/null 2>&1 || true
		python3 - "$work/scale$run.json" "$(tail -1 "$work/rss")" "$run" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); rss, run = int(sys.argv[2]), sys.argv[3]
d, g = s["devices"], s["generator"]
errs = s["errors"]["total"]
print(f"scale run {run}: online {d['online']}/{d['total']}, peak RSS {rss/1024/1024:.2f} GiB, "
      f"{rss/d['total']:.0f} KiB per device, errors {errs}, generator bound {g['bound']}")
json.dump({"rss_gib": rss/1024/1024, "online": d["online"], "errors": errs, "bound": g["bound"]}, open(sys.argv[1] + ".fig", "w"))
PY
	done
	python3 - "$work" "$RUNS" <<'PY'
import json, statistics, sys
f = [json.load(open(f"{sys.argv[1]}/scale{r}.json.fig")) for r in range(1, int(sys.argv[2]) + 1)]
print(f"scale median of {len(f)}: peak RSS {statistics.median(x['rss_gib'] for x in f):.2f} GiB, "
      f"online {statistics.median(x['online'] for x in f):.0f}, errors {statistics.median(x['errors'] for x in f):.0f}, "
      f"generator bound in {sum(x['bound'] for x in f)} of {len(f)}")
PY
}

limit() {
	# SHA-256 plus one copy of every byte: what a perfect simulator would still
	# spend per MiB delivered (the device verifies every byte it receives).
	python3 - <<'PY'
import hashlib, time
buf = bytes(1 << 20)
n, t = 0, time.perf_counter()
while time.perf_counter() - t < 3:
    hashlib.sha256(buf).digest(); bytearray(buf); n += 1
dt = time.perf_counter() - t
print(f"limit: SHA-256 + one copy: {dt / n * 1000:.2f} ms per MiB on one core = {n / dt * 1.048576:.0f} MB/s")
PY
}

case "$ONLY" in
"") fleet; ota; limit ;;
*) "$ONLY" ;;
esac
