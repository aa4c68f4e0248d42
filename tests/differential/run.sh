#!/usr/bin/env bash
# tests/differential/run.sh — compares `mamorictl scan` with an independent Sigma evaluator
# (the sigma-rust crate, src/main.rs): the whole SigmaHQ rule set on events generated from
# the rules themselves (synth.py, fixed seeds) and on any NXLog-flat JSON-lines files given
# as arguments (e.g. the OTRF recordings), then random rules on random events
# (random_rules.py); then, Mamori alone, each input against its own normalized ECS form
# (catch_all/ writes it), which must raise the same alerts. Prints every (event, rule) pair
# only one side fires, grouped by rule, with the rule file (report.py). Not part of ctest: it
# needs cargo and takes minutes; see README.md for what the known differences mean.
#
#   tests/differential/run.sh [--build DIR] [EVENTS.jsonl...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build="$repo/build/release"
if [[ ${1:-} == --build ]]; then build=$2; shift 2; fi
data=${MAMORI_DATA_DIR:-$repo/../shared/data}
sigma="$data/sigma"
dirs=("$sigma/rules" "$sigma/rules-emerging-threats" "$sigma/rules-threat-hunting")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

command -v cargo >/dev/null || { echo "run.sh: cargo is needed (rustup)" >&2; exit 2; }
[[ -x $build/cli/mamorictl ]] || { echo "run.sh: no $build/cli/mamorictl (scripts/build.sh release)" >&2; exit 2; }
(cd "$here" && cargo build --release --quiet)
oracle="$here/target/release/sigma-oracle"

inputs=()
for seed in 1 2 3; do
    SEED=$seed python3 "$here/synth.py" "${dirs[@]}" > "$work/synth$seed.jsonl"
    inputs+=("$work/synth$seed.jsonl")
done
inputs+=("$@")

compare() { # compare EVENTS RULEDIR...
    local input=$1
    shift
    "$oracle" "$input" "$@" 2>"$work/oracle.err" | sort -u > "$work/oracle.tsv"
    local rules=()
    for d in "$@"; do rules+=(--rules "$d"); done
    "$build/cli/mamorictl" scan "${rules[@]}" --quiet "$input" 2>"$work/scan.err" |
        python3 -c 'import json, sys
for line in sys.stdin:
    a = json.loads(line)
    print("%d\t%s" % (a["source"]["index"], a["rule"]["id"]))' | sort -u > "$work/mamori.tsv"
    python3 "$here/report.py" "$input" "$work/mamori.tsv" "$work/oracle.tsv" "$@"
}

for input in "${inputs[@]}"; do compare "$input" "${dirs[@]}"; done

# Round trip: each event's normalized form (Mamori's canonical ECS, as the store keeps it and
# crash re-detection reads it back) must raise the same alerts as the event as sent.
rules=()
for d in "${dirs[@]}"; do rules+=(--rules "$d"); done
alerts() { # alerts EVENTS [INDEX_MAP]: "<line index of the event as sent>\t<rule id>"
    "$build/cli/mamorictl" scan "${rules[@]}" --quiet "$1" 2>/dev/null | python3 -c 'import json, sys
index = [int(x) for x in open(sys.argv[1])] if len(sys.argv) > 1 else None
for line in sys.stdin:
    a = json.loads(line)
    i = a["source"]["index"]
    print("%d\t%s" % (index[i] if index else i, a["rule"]["id"]))' ${2:+"$2"} | sort -u
}
for input in "${inputs[@]}"; do
    "$build/cli/mamorictl" scan --rules "$here/catch_all" --quiet "$input" 2>/dev/null |
        python3 -c 'import json, sys
with open(sys.argv[1], "w") as index:
    for line in sys.stdin:
        a = json.loads(line)
        print(json.dumps(a["event"]))
        index.write("%d\n" % a["source"]["index"])' "$work/ecs.index" > "$work/ecs.jsonl"
    alerts "$input" > "$work/sent.tsv"
    alerts "$work/ecs.jsonl" "$work/ecs.index" > "$work/ecs.tsv"
    REPORT_LABELS="as-sent as-ECS" python3 "$here/report.py" "$input" "$work/sent.tsv" "$work/ecs.tsv" "${dirs[@]}"
done

for seed in 1 2; do
    python3 "$here/random_rules.py" "$seed" 300 2000 "$work/random$seed"
    compare "$work/random$seed/events.jsonl" "$work/random$seed/rules"
done
exit 0
