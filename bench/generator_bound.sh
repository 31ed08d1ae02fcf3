#!/usr/bin/env bash
# generator_bound.sh: is tbsim honest when it, not the server, is the
# bottleneck? Runs a fleet against the embedded server while CPU hogs (busy
# loops pinned to the same cores with taskset) take most of the CPU, and
# prints, per run and as medians: devices provisioned and online, connect and
# provisioning timeouts, provisioning p50, the generator label and lag.
#
#   bench/generator_bound.sh                 # tbsim built from this tree
#   TBSIM=/path/to/tbsim MAXINFLIGHT=-1 bench/generator_bound.sh   # gate off
#
# Environment: DEVICES (10000), DURATION (80s), HOGS (3), RUNS (3), MAXINFLIGHT
# (0: adaptive), TBSIM (a binary; default: go build ./cmd/tbsim).
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICES=${DEVICES:-10000} DURATION=${DURATION:-80s} HOGS=${HOGS:-3} RUNS=${RUNS:-3} MAXINFLIGHT=${MAXINFLIGHT:-0}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
if [ -z "${TBSIM:-}" ]; then
	go build -o "$work/tbsim" ./cmd/tbsim
	TBSIM=$work/tbsim
fi
cores=$(nproc)
cpus=0-$((cores - 1))
echo "tbsim=$TBSIM devices=$DEVICES duration=$DURATION hogs=$HOGS on cpus $cpus max-inflight=$MAXINFLIGHT runs=$RUNS"
for run in $(seq 1 "$RUNS"); do
	state=$work/state$run
	hogs=()
	for _ in $(seq 1 "$HOGS"); do
		taskset -c "$cpus" sh -c 'while :; do :; done' &
		hogs+=($!)
	done
	extra=()
	if "$TBSIM" run --help 2>&1 | grep -q -- --max-inflight; then
		extra=(--max-inflight "$MAXINFLIGHT")
	fi
	taskset -c "$cpus" "$TBSIM" run --devices "$DEVICES" --duration "$DURATION" --state-dir "$state" \
		"${extra[@]}" --json "$work/run$run.json" >"$work/run$run.txt" 2>"$work/run$run.err" || true
	kill "${hogs[@]}" 2>/dev/null || true
	wait "${hogs[@]}" 2>/dev/null || true
	python3 - "$work/run$run.json" "$run" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
if "schema" not in s:  # a tbsim from before the verdicts work (no taxonomy)
    o = {c["name"]: c["count"] for c in s.get("outcomes") or []}
    t = s["trends"]["provision"]
    failed = sum(v for k, v in o.items() if k.startswith("connect ") and k != "connect ok")
    print(f"run {sys.argv[2]} (old tbsim): provisioned {s['provisioned']} online {s['online']} of {s['devices']}; "
          f"connects failed {failed} ({', '.join(f'{k[8:]} {v}' for k, v in o.items() if k.startswith('connect ') and k != 'connect ok')}); "
          f"provision p50 {t['p50']/1e9:.2f}s p99 {t['p99']/1e9:.2f}s; errors listed: {len(s.get('errors') or [])}")
    sys.exit(0)
causes = {c["cause"]: c["count"] for c in s["errors"]["causes"]}
d, g = s["devices"], s["generator"]
print(f"run {sys.argv[2]}: provisioned {d['provisioned']} online {d['online']} of {d['total']}; "
      f"connect_timeout {causes.get('connect_timeout', 0)} provision_timeout {causes.get('provision_timeout', 0)} "
      f"errors {s['errors']['total']}; provision p50 {s['latency_ms']['provision']['p50']/1000:.2f}s "
      f"p99 {s['latency_ms']['provision']['p99']/1000:.2f}s; bound={g['bound']} lag p99 {g['lag_ms']['p99']/1000:.2f}s "
      f"max {g['lag_ms']['max']/1000:.2f}s; cpu {g['cpu_avg']:.2f}/{g['cores']}; handshake limit {g['admission']['limit']} "
      f"peak {g['admission']['peak_in_flight']} cuts {g['admission']['limit_cuts']} wait p99 {g['admission']['wait_ms']['p99']/1000:.2f}s")
print("   ", g["why"])
PY
done
python3 - "$work" "$RUNS" <<'PY'
import json, statistics, sys
runs = [json.load(open(f"{sys.argv[1]}/run{i}.json")) for i in range(1, int(sys.argv[2]) + 1)]
if "schema" not in runs[0]:
    print(f"median of {len(runs)}: provisioned {statistics.median(r['provisioned'] for r in runs):.0f}, "
          f"online {statistics.median(r['online'] for r in runs):.0f}, "
          f"provision p50 {statistics.median(r['trends']['provision']['p50'] for r in runs)/1e9:.2f}s")
    sys.exit(0)
def med(f): return statistics.median(f(s) for s in runs)
cause = lambda s, c: sum(x["count"] for x in s["errors"]["causes"] if x["cause"] == c)
print(f"median of {len(runs)}: provisioned {med(lambda s: s['devices']['provisioned']):.0f}, "
      f"online {med(lambda s: s['devices']['online']):.0f}, "
      f"connect timeouts {med(lambda s: cause(s, 'connect_timeout')):.0f}, "
      f"provision timeouts {med(lambda s: cause(s, 'provision_timeout')):.0f}, "
      f"provision p50 {med(lambda s: s['latency_ms']['provision']['p50'])/1000:.2f}s, "
      f"lag p99 {med(lambda s: s['generator']['lag_ms']['p99'])/1000:.2f}s, "
      f"labelled generator-bound in {sum(s['generator']['bound'] for s in runs)} of {len(runs)}")
PY
