#!/usr/bin/env bash
# tests/differential/run.sh — compares `mamorictl scan` with an independent Sigma evaluator
# (the sigma-rust crate, src/main.rs) over the whole SigmaHQ rule set, on events generated
# from the rules themselves (synth.py, fixed seeds) and, optionally, on extra NXLog-flat
# JSON-lines files given as arguments (e.g. the OTRF recordings). Prints every (event, rule)
# pair only one side fires, grouped by rule, with the rule file. Not part of ctest: it needs
# cargo and takes minutes; see README.md for what the known differences mean.
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

status=0
for input in "${inputs[@]}"; do
    "$oracle" "$input" "${dirs[@]}" 2>"$work/oracle.err" | sort -u > "$work/oracle.tsv"
    rules=()
    for d in "${dirs[@]}"; do rules+=(--rules "$d"); done
    "$build/cli/mamorictl" scan "${rules[@]}" --quiet "$input" 2>"$work/scan.err" |
        python3 -c 'import json, sys
for line in sys.stdin:
    a = json.loads(line)
    print("%d\t%s" % (a["source"]["index"], a["rule"]["id"]))' | sort -u > "$work/mamori.tsv"
    python3 - "$input" "$work/mamori.tsv" "$work/oracle.tsv" "$sigma" <<'PY'
import collections, glob, os, re, sys
inp, ours_f, theirs_f, sigma = sys.argv[1:5]
ours = set(open(ours_f).read().split("\n")) - {""}
theirs = set(open(theirs_f).read().split("\n")) - {""}
files = {}
for f in glob.glob(sigma + "/rules*/**/*.yml", recursive=True):
    m = re.search(r"^id: (\S+)", open(f, encoding="utf-8").read(), re.M)
    if m: files[m.group(1)] = os.path.relpath(f, sigma)
print("%s: mamori %d alerts, sigma-rust %d, both %d" % (os.path.basename(inp), len(ours), len(theirs), len(ours & theirs)))
for name, pairs in (("only mamori", ours - theirs), ("only sigma-rust", theirs - ours)):
    by_rule = collections.defaultdict(list)
    for p in pairs:
        idx, rid = p.split("\t")
        by_rule[rid].append(int(idx))
    for rid, idx in sorted(by_rule.items(), key=lambda x: -len(x[1])):
        print("  %-16s %5d  %s  (lines %s)" % (name, len(idx), files.get(rid, rid), ",".join(str(i + 1) for i in sorted(idx)[:5])))
PY
done
exit $status
