#!/usr/bin/env bash
# The demo, from a fresh machine: installs what is missing, builds, starts a development
# node (embedded bus, loopback) with the SigmaHQ Windows rules loaded for live detection,
# streams the OTRF attack recordings into it from simulated agents over mutual TLS, shows
# the alerts the rules raised, then what landed in the store.
#   scripts/demo.sh [DIR]        (default DIR: ./demo; re-running keeps the data)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
dir="${1:-$root/demo}"
data="${MAMORI_DATA_DIR:-$root/../shared/data}"
agents="${DEMO_AGENTS:-20}"
./scripts/setup.sh
./scripts/build.sh release
bin="$root/build/release"
mkdir -p "$dir"
log="$dir/mamorid.log"

# live detection (docs/detection.md §7): the SigmaHQ Windows rules, when the data has them
rules_dir="$data/sigma/rules/windows"
rules=()
if [ -d "$rules_dir" ]; then
  rules=(--rules "$rules_dir")
else
  echo "== no Sigma rules in $rules_dir: running without detection" >&2
fi

"$bin/server/mamorid" --dev "$dir" --ingest-port 0 ${rules[@]+"${rules[@]}"} >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$dir/dev.json" ] && grep -q "ready" "$log" && break; sleep 0.1; done
grep -q "ready" "$log" || { echo "mamorid did not start; see $log" >&2; cat "$log" >&2; exit 1; }
sed -n '/development node/,/Ctrl-C/p' "$log"

# Waits until detection has evaluated every accepted event and written its alerts (the node's
# /metrics; the API port and CA come from the development directory).
wait_detected() {
  python3 - "$dir" <<'PY'
import json, ssl, sys, time, urllib.request
d = sys.argv[1]
api = json.load(open(d + "/dev.json"))["api"]
ctx = ssl.create_default_context(cafile=d + "/ca.pem")
start = time.time()
shown = start
while True:
    text = urllib.request.urlopen(api + "/metrics", context=ctx, timeout=30).read().decode()
    m = {k: float(v) for k, _, v in (l.rpartition(" ") for l in text.splitlines() if l and l[0] != "#")}
    done = m.get("mamori_detect_events_evaluated_total", 0)
    total = m.get("mamori_ingest_events_accepted_total", 0)
    if done >= total and m.get("mamori_detect_pending_batches", 1) == 0:
        break
    if time.time() - start > 900:
        sys.exit("detection did not catch up in 15 minutes (%d of %d events)" % (done, total))
    if time.time() - shown >= 10:
        print("   detected %d of %d events" % (done, total), flush=True)
        shown = time.time()
    time.sleep(0.5)
PY
}

mapfile -t recordings < <(find "$data/otrf" -name '*.zip' | sort)
echo "== replaying ${#recordings[@]} OTRF recordings with $agents simulated agents (timestamps rebased to now)"
"$bin/bench/mamori-agent-sim" --dev "$dir" --agents "$agents" --replay "${recordings[@]}" \
  --events-per-agent "${DEMO_EVENTS_PER_AGENT:-25000}" --format winlog | tee "$dir/sim.json"

if [ ${#rules[@]} -gt 0 ]; then
  echo "== waiting for detection to catch up (the rule set compiles while the replay runs)"
  wait_detected
  grep -m 1 "rule set loaded" "$log" || true
  echo "== alerts raised by the SigmaHQ Windows rules (mamorictl alerts, newest first)"
  total=$("$bin/cli/mamorictl" alerts --dev "$dir" --json --limit 1000000000 | wc -l)
  by_level=""
  for level in critical high medium low informational; do
    by_level+=" $level=$("$bin/cli/mamorictl" alerts --dev "$dir" --level $level --json --limit 1000000000 | wc -l)"
  done
  echo "$total alerts:$by_level; the 10 newest:"
  "$bin/cli/mamorictl" alerts --dev "$dir" --limit 10
fi

echo "== server stats (last line of $log)"
grep " stats " "$log" | tail -n 1 || true
kill -TERM $pid
wait $pid || true
trap - EXIT

echo "== what is in the store ($dir/data)"
"$bin/cli/mamorictl" store stats --dev "$dir" --compact
echo "events of one simulated host, found through the host.id index:"
"$bin/cli/mamorictl" store lookup --dev "$dir" --tenant default --field host.id --value sim-00001
echo "process creations (event.category index):"
"$bin/cli/mamorictl" store lookup --dev "$dir" --tenant default --field event.category --value process
cat <<MSG

Look further:
  server log              $log
  one event               $bin/cli/mamorictl store lookup --dev $dir --tenant default --field process.name --value powershell.exe --list | head -1 \\
                            | xargs -I{} $bin/cli/mamorictl store get --dev $dir --tenant default --id {}
  run the node yourself   $bin/server/mamorid --dev $dir ${rules[@]+"${rules[@]}"}
  more agents             $bin/bench/mamori-agent-sim --dev $dir --agents 500 --duration 60
  alerts (node running)   $bin/cli/mamorictl alerts --dev $dir --level high
                          $bin/cli/mamorictl alerts get ID --dev $dir
                          $bin/cli/mamorictl alerts ack ID --assignee alice --dev $dir
MSG
