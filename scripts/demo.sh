#!/usr/bin/env bash
# The demo, from a fresh machine: installs what is missing, builds, starts a development
# node (embedded bus, loopback) and streams the OTRF attack recordings into it from
# simulated agents over mutual TLS, then shows what landed in the store.
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

"$bin/server/mamorid" --dev "$dir" --ingest-port 0 >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$dir/dev.json" ] && grep -q "ready" "$log" && break; sleep 0.1; done
grep -q "ready" "$log" || { echo "mamorid did not start; see $log" >&2; cat "$log" >&2; exit 1; }
sed -n '/development node/,/Ctrl-C/p' "$log"

mapfile -t recordings < <(find "$data/otrf" -name '*.zip' | sort)
echo "== replaying ${#recordings[@]} OTRF recordings with $agents simulated agents (timestamps rebased to now)"
"$bin/bench/mamori-agent-sim" --dev "$dir" --agents "$agents" --replay "${recordings[@]}" \
  --events-per-agent "${DEMO_EVENTS_PER_AGENT:-25000}" --format winlog | tee "$dir/sim.json"

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
  run the node yourself   $bin/server/mamorid --dev $dir
  more agents             $bin/bench/mamori-agent-sim --dev $dir --agents 500 --duration 60
MSG
