#!/usr/bin/env python3
"""tests/differential/report.py — run.sh's summary: alerts of each side and every (event,
rule) pair only one side fires, grouped by rule, with the rule's file."""
import collections, glob, os, re, sys

inp, ours_f, theirs_f = sys.argv[1:4]
left, right = os.environ.get("REPORT_LABELS", "mamori sigma-rust").split()
dirs = sys.argv[4:]
ours = set(open(ours_f).read().split("\n")) - {""}
theirs = set(open(theirs_f).read().split("\n")) - {""}
files = {}
for d in dirs:
    for f in glob.glob(d + "/**/*.yml", recursive=True):
        m = re.search(r"^id: (\S+)", open(f, encoding="utf-8").read(), re.M)
        if m:
            files[m.group(1)] = os.path.relpath(f, os.path.dirname(d))
name = os.path.basename(inp)
if name == "events.jsonl":
    name = os.path.join(os.path.basename(os.path.dirname(inp)), name)
print("%s: %s %d alerts, %s %d, both %d" % (name, left, len(ours), right, len(theirs), len(ours & theirs)))
for name, pairs in (("only " + left, ours - theirs), ("only " + right, theirs - ours)):
    by_rule = collections.defaultdict(list)
    for p in pairs:
        idx, rid = p.split("\t")
        by_rule[rid].append(int(idx))
    for rid, idx in sorted(by_rule.items(), key=lambda x: -len(x[1])):
        print("  %-16s %5d  %s  (lines %s)" % (name, len(idx), files.get(rid, rid),
                                              ",".join(str(i + 1) for i in sorted(idx)[:5])))
