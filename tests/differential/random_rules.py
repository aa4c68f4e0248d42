#!/usr/bin/env python3
"""tests/differential/random_rules.py — random Sigma rules and random events over a small
vocabulary, for run.sh's comparison of two Sigma evaluators.

    random_rules.py SEED NRULES NEVENTS OUTDIR   # writes OUTDIR/rules/*.yml, OUTDIR/events.jsonl

Rules (process_creation) combine 1–5 selections — field maps, lists of maps, keyword lists —
with null, '', exists, fieldref, contains/startswith/endswith/all/cased, value lists and `*`
wildcards, under random conditions (and/or/not, parentheses, `1 of`/`all of` patterns and
`them`). Values and events share a small vocabulary in random case, so about a third of the
(event, rule) pairs fire. `?` is left out (sigma-rust does not backtrack over it), and
windash unless WINDASH=1 (sigma-rust varies only flags that start a space-separated word)."""
import json, os, random, sys
R = random.Random(int(sys.argv[1]))
nrules, nevents = int(sys.argv[2]), int(sys.argv[3])
out = sys.argv[4]
FIELDS = ["Image", "CommandLine", "ParentImage", "User", "IntegrityLevel", "Description", "FooBar", "CurrentDirectory"]
WORDS = ["ab", "AB", "abc", "b", "x y", "c:\\a", "c:\\A\\b", "-e", "/e", "zz", "a.b", "q1"]
MODS = [[], ["contains"], ["startswith"], ["endswith"], ["contains", "all"], ["cased"], ["contains", "cased"]]
if os.environ.get("WINDASH"): MODS += [["windash"], ["contains", "windash"]]

def word():
    return "".join(R.choice(WORDS) for _ in range(R.randint(1, 2)))

def pattern():
    w = word()
    r = R.random()
    if r < 0.15: return "*" + w
    if r < 0.3: return w + "*"
    if r < 0.4: return w[:1] + "*" + w[1:]
    return w

def selection():
    if R.random() < 0.12:
        return [word() for _ in range(R.randint(1, 3))]  # keywords
    sel = {}
    for f in R.sample(FIELDS, R.randint(1, 3)):
        r = R.random()
        if r < 0.08:
            sel[f + "|exists"] = R.choice([True, False]); continue
        if r < 0.14:
            sel[f] = None; continue
        if r < 0.2:
            sel[f + "|fieldref"] = R.choice([x for x in FIELDS if x != f]); continue
        if r < 0.25:
            sel[f] = ""; continue
        mods = R.choice(MODS)
        key = "|".join([f] + mods)
        vals = [pattern() for _ in range(R.randint(1, 3))]
        sel[key] = vals if len(vals) > 1 or R.random() < 0.3 else vals[0]
    if R.random() < 0.15:
        return [sel, {R.choice(FIELDS) + "|contains": word()}]
    return sel

def condition(names, depth=0):
    r = R.random()
    if depth > 2 or r < 0.3:
        n = R.choice(names)
        return ("not " if R.random() < 0.25 else "") + n
    if r < 0.4:
        opts = ["1 of sel*", "all of sel*", "1 of them", "all of them"]
        if any(n.startswith("filter") for n in names): opts += ["1 of filter*", "not 1 of filter*"]
        return R.choice(opts)
    op = R.choice([" and ", " or "])
    a, b = condition(names, depth + 1), condition(names, depth + 1)
    s = a + op + b
    return "(" + s + ")" if R.random() < 0.5 else s

def yaml_scalar(v):
    if v is None: return "null"
    if v is True: return "true"
    if v is False: return "false"
    return "'" + str(v).replace("'", "''") + "'"

os.makedirs(out + "/rules", exist_ok=True)
for i in range(nrules):
    names = ["sel%d" % k for k in range(R.randint(1, 3))] + ["filter%d" % k for k in range(R.randint(0, 2))]
    lines = ["title: r%d" % i, "id: 00000000-0000-4000-8000-%012d" % i, "status: test",
             "logsource:", "    category: process_creation", "    product: windows", "detection:"]
    for n in names:
        s = selection()
        lines.append("    %s:" % n)
        items = s if isinstance(s, list) else [s]
        for it in items:
            if isinstance(it, str):
                lines.append("        - " + yaml_scalar(it)); continue
            first = True
            for k, v in it.items():
                prefix = "        - " if isinstance(s, list) and first else "        " + ("  " if isinstance(s, list) else "")
                first = False
                if isinstance(v, list):
                    lines.append(prefix + k + ":")
                    for x in v: lines.append("            " + ("  " if isinstance(s, list) else "") + "- " + yaml_scalar(x))
                else:
                    lines.append(prefix + k + ": " + yaml_scalar(v))
    lines.append("    condition: " + condition(names))
    lines.append("level: low")
    open(out + "/rules/r%d.yml" % i, "w").write("\n".join(lines) + "\n")

with open(out + "/events.jsonl", "w") as f:
    for i in range(nevents):
        ev = {"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1, "SourceName": "Microsoft-Windows-Sysmon",
              "Hostname": "h1", "RecordNumber": i}
        for fld in FIELDS:
            r = R.random()
            if r < 0.25: continue
            if r < 0.3: ev[fld] = ""; continue
            v = "".join(R.choice(WORDS + ["-", " ", "\\"]) for _ in range(R.randint(1, 4)))
            ev[fld] = v.upper() if R.random() < 0.2 else v
        f.write(json.dumps(ev) + "\n")
