#!/usr/bin/env bash
# thingsboard.sh: tbsim used for its purpose, a load test of a running
# ThingsBoard (nothing here builds or starts one). Each step is the command a
# user would type; the figures come from each run's --json summary.
#
#   TB_MQTT=127.0.0.1:1883 TB_URL=http://127.0.0.1:8080 bench/thingsboard.sh
#
# Environment: TB_USER/TB_PASSWORD (tenant@thingsboard.org/tenant), SIZES
# ("500 2000": fleets provisioned from scratch, each then run again on its
# stored tokens), RAMP (100/s), DURATION (120s per run), OTA_DEVICES (100),
# OTA_SIZE (1048576 bytes), KEEP=1 leaves the devices on the server (default:
# `tbsim devices delete` removes every device these runs created).
#
# Steps: a provisioning profile per fleet (`tbsim profile provisioning`), the
# fleets, the second runs, OTA_DEVICES devices in their own profile taking an
# image pushed to that profile (`tbsim ota push --profile`) and one device of
# the first fleet taking another (`--device`), `tbsim ota status`, and the
# shipped scenarios that can run against an external server.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${TB_MQTT:?set TB_MQTT to ThingsBoard MQTT host:port}" "${TB_URL:?set TB_URL to its REST base URL}"
TB_USER=${TB_USER:-tenant@thingsboard.org} TB_PASSWORD=${TB_PASSWORD:-tenant}
SIZES=${SIZES:-500 2000} RAMP=${RAMP:-100/s} DURATION=${DURATION:-120s}
OTA_DEVICES=${OTA_DEVICES:-100} OTA_SIZE=${OTA_SIZE:-1048576} KEEP=${KEEP:-}
export TBSIM_USER=$TB_USER TBSIM_PASSWORD=$TB_PASSWORD
work=${WORK:-$(mktemp -d)}
echo "work dir $work"
go build -o "$work/tbsim" ./cmd/tbsim
tbsim() { "$work/tbsim" "$@"; }
stamp=$(date +%s)
key() { echo "tbsim-load-$1-$stamp"; }
# Seeds equal modulo 20 share an OUI (and may share MACs): each fleet gets
# its own residue, and the stamp keeps runs of this script apart.
seed() { echo $(( (stamp % 100000) * 20 + $1 )); }

row() { # row LABEL JSON: one line of figures from a summary
	python3 - "$@" <<'PY'
import json, sys
label, path = sys.argv[1], sys.argv[2]
s = json.load(open(path)); d, l, r, g = s["devices"], s["latency_ms"], s["rates_per_s"], s["generator"]
def p(name, q):
    x = l.get(name, {})
    return f"{x.get(q, 0):.0f}" if x.get("count") else "-"
errs = ", ".join(f"{c['cause']} {c['count']}" for c in s["errors"]["causes"]) or "none"
ota = s["ota"]
otatxt = f"{ota['updated']} updated, {ota['failed']} failed, {ota['mb_per_s']:.2f} MB/s" if ota["updated"] or ota["failed"] else "-"
print(f"| {label} | {d['online']}/{d['total']} | {d['provisioned_this_run']} | "
      f"{p('provision','p50')}/{p('provision','p99')} | {p('connect','p50')}/{p('connect','p99')} | "
      f"{p('publish','p50')}/{p('publish','p99')} | {r['telemetry']:.0f} | {otatxt} | {errs} | "
      f"{g['cpu_avg']:.2f}/{g['cores']} {'bound' if g['bound'] else 'not bound'} | {s['verdict']['exit_code']} |")
PY
}

run() { # run NAME LABEL DEVICES SEED [flags]: a fleet run on NAME's state; prints its summary's path
	local name=$1 label=$2 n=$3 seed=$4; shift 4
	tbsim run --server "mqtt://$TB_MQTT" --provision-key "$(key "$name")" --provision-secret s3cret \
		--devices "$n" --seed "$seed" --ramp "$RAMP" --state-dir "$work/$name" --json "$work/$name-$label.json" \
		"$@" >"$work/$name-$label.txt" 2>"$work/$name-$label.err" || true
	echo "$work/$name-$label.json"
}
table=()
fleets=()
k=0
for n in $SIZES; do
	k=$((k + 1))
	name=fleet$n
	tbsim profile provisioning "$name-$stamp" --key "$(key "$name")" --secret s3cret --url "$TB_URL"
	fleets+=("$name")
	j=$(run "$name" new "$n" "$(seed $k)" --duration "$DURATION"); table+=("$(row "$n devices, new" "$j")")
	j=$(run "$name" again "$n" "$(seed $k)" --duration 60s); table+=("$(row "$n devices, stored tokens" "$j")")
done

# OTA to a profile: its own fleet, the push once every device is online.
tbsim profile provisioning "ota-$stamp" --key "$(key ota)" --secret s3cret --url "$TB_URL"
fleets+=(ota)
tbsim firmware build --version "1.1.$stamp" --size "$OTA_SIZE" -o "$work/fw.bin"
( run ota new "$OTA_DEVICES" "$(seed 10)" --duration 240s --ota-version "1.1.$stamp" --threshold 'ota.success==100%' >/dev/null ) &
for _ in $(seq 60); do
	sleep 2
	grep -q " online=$OTA_DEVICES " "$work/ota-new.err" 2>/dev/null && break
done
tbsim ota push "$work/fw.bin" --title CORE_ESP32 --version "1.1.$stamp" --profile "ota-$stamp" --url "$TB_URL"
wait
table+=("$(row "$OTA_DEVICES devices, OTA $((OTA_SIZE / 1024)) KiB to the profile" "$work/ota-new.json")")

# OTA to one device of the first fleet.
first=${fleets[0]}
dev=$(tbsim devices ls --state-dir "$work/$first" | awk 'NR==2{print $1}')
tbsim firmware build --version "1.2.$stamp" --size "$OTA_SIZE" -o "$work/fw2.bin"
( run "$first" ota1 "${SIZES%% *}" "$(seed 1)" --duration 150s >/dev/null ) &
sleep 40 # the fleet is on stored tokens: online within seconds
tbsim ota push "$work/fw2.bin" --title CORE_ESP32 --version "1.2.$stamp" --device "$dev" --url "$TB_URL"
wait
table+=("$(row "${SIZES%% *} devices, OTA to $dev only" "$work/$first-ota1.json")")
tbsim ota status --url "$TB_URL" | tee "$work/ota-status.txt"

# Shipped scenarios against the external server (those needing the embedded one are listed as refused).
i=0
for f in scenarios/*.yaml; do
	# a seed of its own (residues 11-19, 0, ...): names ThingsBoard has not seen, which provisioning needs
	i=$((i + 1)) sc=$(basename "$f" .yaml)
	if tbsim scenario run "$f" --server "mqtt://$TB_MQTT" --provision-key "$(key "${fleets[0]}")" --provision-secret s3cret \
		--seed "$(seed $((i + 10)))" >"$work/sc-$sc.txt" 2>&1; then
		echo "scenario $sc: passed"
	else
		echo "scenario $sc: $(grep -m1 -E 'needs the embedded|FAILED|error' "$work/sc-$sc.txt" || tail -1 "$work/sc-$sc.txt")"
	fi
done

echo
echo "| run | online | provisioned | provision p50/p99 ms | connect p50/p99 ms | PUBACK p50/p99 ms | telemetry/s | OTA | errors | tbsim CPU/cores | exit |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${table[@]}"

if [ -z "$KEEP" ]; then
	for name in "${fleets[@]}"; do
		tbsim devices delete --state-dir "$work/$name" --url "$TB_URL" --erase-tokens || true
	done
fi
