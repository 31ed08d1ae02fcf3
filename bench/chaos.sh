#!/usr/bin/env bash
# chaos.sh: a fleet against tbsim server over TCP while both are killed
# with SIGKILL at random instants, then the checks a user would make.
#
#   bench/chaos.sh                                   # 10,000 devices, 10 minutes
#   DEVICES=300 DURATION=60 VERIFY=20 bench/chaos.sh # a quick run
#
# The fleet runs with the firmware's write-ahead token (--write-ahead-token).
# During DURATION seconds tbsim server is killed KILLS times and the fleet
# KILLS times (default 3 each): one of each while the fleet provisions, one
# of each while a rollout (tbsim ota push, mid-run) is under way, the others
# anywhere in the second half. Each is started again after a short outage
# (the fleet with the time that is left); after a server restart the push is
# repeated, as a user would, and must be taken as the same package.
#
# Then it checks, and prints the figures:
#   - no token lost: every device the server knows has a token in its NVS
#     (tbsim devices ls), and a calm verification run of VERIFY seconds on
#     the same state provisions nobody again and brings every device online;
#   - no device stranded: devices.stranded of the last chaos run and of the
#     verification run;
#   - no rollout stuck: no device QUEUED (tbsim ota status) once the queue
#     had time to release it;
#   - every state file opens: server.db (the server restarts on it),
#     nvs.db and flash.db (tbsim devices ls).
# Exit 0 when every check holds, 1 otherwise. WORK (default: a new temporary
# directory, kept) holds the logs, summaries and state.
#
# Environment: DEVICES (10000), DURATION (600, seconds), VERIFY (120),
# KILLS (3), RAMP (200, devices per second), OTA_SIZE (100000 bytes),
# SEED (the kill instants; default: from the clock, printed), TBSIM (a
# binary; default: go build ./cmd/tbsim), MQTT_PORT (21883), HTTP_PORT (28080).
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICES=${DEVICES:-10000} DURATION=${DURATION:-600} VERIFY=${VERIFY:-120} KILLS=${KILLS:-3}
RAMP=${RAMP:-200} OTA_SIZE=${OTA_SIZE:-100000} SEED=${SEED:-$(($(date +%s) % 100000))}
MQTT_PORT=${MQTT_PORT:-21883} HTTP_PORT=${HTTP_PORT:-28080}
WORK=${WORK:-$(mktemp -d /tmp/tbsim-chaos.XXXXXX)}
mkdir -p "$WORK"
if [ -z "${TBSIM:-}" ]; then
	go build -o "$WORK/tbsim" ./cmd/tbsim
	TBSIM=$WORK/tbsim
fi
URL=http://127.0.0.1:$HTTP_PORT
# OTA packs: ThingsBoard's 100 a second for a large fleet; for a small one
# fewer, so that the rollout lasts long enough to be killed in.
PACK=$((DEVICES / 30 < 1 ? 1 : DEVICES / 30 > 100 ? 100 : DEVICES / 30))
export TBSIM_PROVISION_KEY=chaos-key TBSIM_PROVISION_SECRET=chaos-secret
RANDOM=$SEED

server_pid= fleet_pid= server_n=0 fleet_n=0 pushed=0
events_log=$WORK/events.txt
: >"$events_log"
cleanup() {
	[ -n "$fleet_pid" ] && kill -9 "$fleet_pid" 2>/dev/null || true
	[ -n "$server_pid" ] && kill -9 "$server_pid" 2>/dev/null || true
}
trap cleanup EXIT

now_ms() { date +%s%3N; }
T0=$(now_ms)
END=$((T0 + DURATION * 1000))
at() { printf '+%6.1fs' "$(echo "($(now_ms) - $T0) / 1000" | bc -l)"; }
say() { echo "$(at)  $*" | tee -a "$events_log"; }
# rand LO HI: a whole number of milliseconds in [LO, HI].
rand() { echo $(($1 + (RANDOM * 32768 + RANDOM) % ($2 - $1 + 1))); }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
	for _ in $(seq 600); do listening "$1" && return 0; sleep 0.1; done
	say "nothing listens on port $1"; return 1
}
wait_gone() { for _ in $(seq 600); do listening "$1" || return 0; sleep 0.1; done; }

status() { "$TBSIM" ota status --url "$URL" 2>>"$WORK/ota-status.err" || true; }
# status_line: devices the server knows, and how many are QUEUED.
status_line() {
	status | awk '$1=="total"{t=$NF} $1=="QUEUED"{q+=$NF} END{printf "server knows %d devices, %d QUEUED", t, q}'
}

start_server() {
	server_n=$((server_n + 1))
	"$TBSIM" server --mqtt "127.0.0.1:$MQTT_PORT" --http "127.0.0.1:$HTTP_PORT" --state "$WORK/server.db" \
		--ota-pack-size "$PACK" --ota-pack-interval 1s >"$WORK/server-$server_n.log" 2>&1 &
	server_pid=$!
	wait_port "$HTTP_PORT" && wait_port "$MQTT_PORT"
	if ! kill -0 "$server_pid" 2>/dev/null; then
		say "tbsim server did not start again: $(tail -3 "$WORK/server-$server_n.log")"
		exit 1
	fi
}

start_fleet() {
	local left=$(((END - $(now_ms)) / 1000))
	if [ "$left" -lt 5 ]; then fleet_pid=; return; fi
	fleet_n=$((fleet_n + 1))
	"$TBSIM" run --server "mqtt://127.0.0.1:$MQTT_PORT" --devices "$DEVICES" --ramp "$RAMP/s" --write-ahead-token \
		--state-dir "$WORK/fleet" --duration "${left}s" --json "$WORK/fleet-$fleet_n.json" \
		>"$WORK/fleet-$fleet_n.txt" 2>"$WORK/fleet-$fleet_n.err" &
	fleet_pid=$!
}

push() {
	local out
	if out=$("$TBSIM" ota push "$WORK/fw.bin" --title CORE_ESP32 --version 1.1.0 --url "$URL" 2>&1); then
		say "ota push: $out"
	else
		say "ota push FAILED: $out"
		failed_push=1
	fi
}

kill_server() {
	say "kill -9 tbsim server ($(status_line))"
	kill -9 "$server_pid" 2>/dev/null || true
	wait "$server_pid" 2>/dev/null || true
	wait_gone "$HTTP_PORT"
	local outage
	outage=$(rand 1000 5000)
	sleep "$(echo "$outage / 1000" | bc -l)"
	start_server
	say "tbsim server started again after a ${outage} ms outage ($(status_line))"
	[ "$pushed" = 1 ] && push
	return 0
}

kill_fleet() {
	if [ -z "$fleet_pid" ]; then return; fi
	say "kill -9 tbsim run (fleet run $fleet_n; $(status_line))"
	kill -9 "$fleet_pid" 2>/dev/null || true
	wait "$fleet_pid" 2>/dev/null || true
	sleep "$(echo "$(rand 1000 3000) / 1000" | bc -l)"
	start_fleet
	say "tbsim run started again (fleet run $fleet_n)"
}

# The schedule, in ms after the start.
D=$((DURATION * 1000))
ramp_ms=$((DEVICES * 1000 / RAMP))
prov_hi=$((ramp_ms < D / 5 ? ramp_ms : D / 5))
prov_hi=$((prov_hi < 3000 ? 3000 : prov_hi))
push_at=$(rand $((D * 30 / 100)) $((D * 40 / 100)))
events=()
events+=("$(rand 1000 "$prov_hi") server")
events+=("$(rand 1000 "$prov_hi") fleet")
events+=("$push_at push")
if [ "$KILLS" -ge 2 ]; then
	events+=("$((push_at + $(rand 2000 8000))) server")
	events+=("$((push_at + $(rand 4000 20000))) fleet")
fi
for _ in $(seq 3 "$KILLS"); do
	events+=("$(rand $((D * 50 / 100)) $((D * 85 / 100))) server")
	events+=("$(rand $((D * 50 / 100)) $((D * 85 / 100))) fleet")
done

"$TBSIM" firmware build --version 1.1.0 --size "$OTA_SIZE" -o "$WORK/fw.bin" >/dev/null
echo "chaos: $DEVICES devices for ${DURATION}s (ramp $RAMP/s, write-ahead token, OTA $OTA_SIZE bytes in packs of $PACK/s), $KILLS kills of the server and $KILLS of the fleet, seed $SEED"
echo "       machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at start; work dir $WORK"
start_server
start_fleet
failed_push=0
while read -r t what; do
	wait_ms=$((T0 + t - $(now_ms)))
	[ "$wait_ms" -gt 0 ] && sleep "$(echo "$wait_ms / 1000" | bc -l)"
	case $what in
	server) kill_server ;;
	fleet) kill_fleet ;;
	push) pushed=1; say "rollout: $(status_line)"; push ;;
	esac
done < <(printf '%s\n' "${events[@]}" | sort -n)

# The last fleet run ends at DURATION.
[ -n "$fleet_pid" ] && { wait "$fleet_pid" || say "fleet run $fleet_n exited $?"; }
say "the chaos part is over ($(status_line))"
status >"$WORK/ota-status.txt"
last_json=$WORK/fleet-$fleet_n.json

# The server's view, then its state file is closed; the fleet's files.
python3 - "$URL" >"$WORK/server-devices.txt" <<'PY'
import json, sys, urllib.request
base = sys.argv[1]
def call(path, body=None, tok=None):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode() if body else None,
                                 headers={"Content-Type": "application/json", **({"X-Authorization": "Bearer " + tok} if tok else {})})
    return json.load(urllib.request.urlopen(req))
tok = call("/api/auth/login", {"username": "tenant@thingsboard.org", "password": "tenant"})["token"]
page = 0
while True:
    pg = call(f"/api/tenant/devices?pageSize=1000&page={page}", tok=tok)
    for d in pg["data"]:
        print(d["name"])
    if not pg["hasNext"]:
        break
    page += 1
PY
kill -INT "$server_pid"; wait "$server_pid" || true; server_pid=
ls_ok=yes
"$TBSIM" devices ls --state-dir "$WORK/fleet" >"$WORK/devices-ls.txt" 2>"$WORK/devices-ls.err" || ls_ok="NO: $(cat "$WORK/devices-ls.err")"

# A calm run on the same state: every stored token must still work.
start_server
server_opens=yes
"$TBSIM" run --server "mqtt://127.0.0.1:$MQTT_PORT" --devices "$DEVICES" --ramp "$RAMP/s" --write-ahead-token \
	--state-dir "$WORK/fleet" --duration "${VERIFY}s" --json "$WORK/verify.json" >"$WORK/verify.txt" 2>"$WORK/verify.err" || true
status >"$WORK/ota-status-after-verify.txt"
kill -INT "$server_pid"; wait "$server_pid" || true; server_pid=

echo
echo "tbsim ota status at the end of the chaos part:"
sed 's/^/  /' "$WORK/ota-status.txt"
python3 - "$WORK" "$last_json" "$ls_ok" "$server_opens" "$failed_push" "$DEVICES" "$server_n" "$fleet_n" <<'PY'
import json, sys
work, last, ls_ok, server_opens, failed_push, devices, server_runs, fleet_runs = sys.argv[1:]
devices = int(devices)
known = set(open(f"{work}/server-devices.txt").read().split())
nvs = {}
for line in open(f"{work}/devices-ls.txt").read().splitlines()[1:]:
    f = line.split()
    nvs[f[0]] = f[1] == "yes"
lost = sorted(n for n in known if not nvs.get(n))
queued = sum(int(l.split()[-1]) for l in open(f"{work}/ota-status.txt") if l.startswith("QUEUED"))
s = json.load(open(last))
v = json.load(open(f"{work}/verify.json"))
d, vd = s["devices"], v["devices"]
print()
print(f"figures ({devices} devices; {server_runs} server runs, {fleet_runs} chaos fleet runs):")
print(f"  devices the server knows ........ {len(known)}")
print(f"  devices with a token in NVS ..... {sum(nvs.values())} (tbsim devices ls: {len(nvs)} devices)")
print(f"  tokens lost ..................... {len(lost)}{' e.g. ' + ', '.join(lost[:5]) if lost else ''}")
print(f"  stranded (last chaos run) ....... {d['stranded']}")
print(f"  QUEUED at the end ............... {queued}")
print(f"  fw_states (last chaos run) ...... {d['fw_states']}")
print(f"  versions (last chaos run) ....... {d['versions']}")
print(f"  last chaos run .................. online {d['online']} of {d['total']}, provisioned {d['provisioned']}, "
      f"re-provisioned {d['reprovisioned']}, errors {s['errors']['total']} {[(c['cause'], c['count']) for c in s['errors']['causes']]}")
print(f"  verification run ................ online {vd['online']} of {vd['total']}, provisioned this run {vd['provisioned_this_run']}, "
      f"re-provisioned {vd['reprovisioned']}, stranded {vd['stranded']}, errors {v['errors']['total']}, versions {vd['versions']}")
print(f"  state files open ................ server.db {server_opens}; nvs.db, flash.db {ls_ok}")
checks = {
    "no token lost": not lost and vd["provisioned_this_run"] == 0 and vd["reprovisioned"] == 0 and d["reprovisioned"] == 0,
    "no device stranded": d["stranded"] == 0 and vd["stranded"] == 0,
    "no rollout stuck in QUEUED": queued == 0,
    "every state file opens": ls_ok == "yes" and server_opens == "yes",
    "every device online after the chaos": vd["online"] == devices,
    "every push taken": failed_push == "0",
}
for k, ok in checks.items():
    print(f"  {'✓' if ok else '✗'} {k}")
print("verdict:", "PASS" if all(checks.values()) else "FAIL")
sys.exit(0 if all(checks.values()) else 1)
PY
