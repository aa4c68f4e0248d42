#!/usr/bin/env python3
"""tests/differential/synth.py — NXLog-flat Windows (and Sysmon for Linux) events generated
from SigmaHQ rules' selections, one JSON object per line, for run.sh's comparison of two Sigma evaluators.

    SEED=1 synth.py RULEDIR... > events.jsonl

Per routable rule, four events: the non-filter selections filled, all selections filled, and
two random subsets. A value satisfies its modifiers (wildcards expanded, contains/startswith/
endswith wrapped, base64/base64offset encoded, a cidr's first host, numeric comparisons,
exists, fieldref, all; UTF-16 before base64; `re` by a sample built from the expression and
checked with Python's re) in random ASCII case; `expand` and UTF-16 without base64 are left
out. Events are inputs, not expectations: the two evaluators' answers are compared."""
import base64, glob, ipaddress, json, os, random, re, sys
import yaml

random.seed(int(os.environ.get('SEED', '1')))
SYSMON = 'Microsoft-Windows-Sysmon/Operational'
CAT = {
    'process_creation': (SYSMON, 1), 'file_change': (SYSMON, 2), 'network_connection': (SYSMON, 3),
    'process_termination': (SYSMON, 5), 'driver_load': (SYSMON, 6), 'image_load': (SYSMON, 7),
    'create_remote_thread': (SYSMON, 8), 'raw_access_thread': (SYSMON, 9), 'process_access': (SYSMON, 10),
    'file_event': (SYSMON, 11), 'registry_add': (SYSMON, 12), 'registry_delete': (SYSMON, 12),
    'registry_set': (SYSMON, 13), 'registry_event': (SYSMON, 13), 'registry_rename': (SYSMON, 14),
    'create_stream_hash': (SYSMON, 15), 'pipe_created': (SYSMON, 17), 'wmi_event': (SYSMON, 19),
    'dns_query': (SYSMON, 22), 'file_delete': (SYSMON, 23), 'clipboard_capture': (SYSMON, 24),
    'process_tampering': (SYSMON, 25), 'file_delete_detected': (SYSMON, 26),
    'file_block_executable': (SYSMON, 27), 'file_block_shredding': (SYSMON, 28),
    'file_executable_detected': (SYSMON, 29), 'sysmon_status': (SYSMON, 4), 'sysmon_error': (SYSMON, 255),
    'ps_module': ('Microsoft-Windows-PowerShell/Operational', 4103),
    'ps_script': ('Microsoft-Windows-PowerShell/Operational', 4104),
    'ps_classic_start': ('Windows PowerShell', 400), 'ps_classic_provider_start': ('Windows PowerShell', 600),
    'ps_classic_script': ('Windows PowerShell', 800),
}
SVC = {
    'security': 'Security', 'system': 'System', 'application': 'Application', 'sysmon': SYSMON,
    'powershell': 'Microsoft-Windows-PowerShell/Operational', 'powershell-classic': 'Windows PowerShell',
    'taskscheduler': 'Microsoft-Windows-TaskScheduler/Operational',
    'wmi': 'Microsoft-Windows-WMI-Activity/Operational',
    'windefend': 'Microsoft-Windows-Windows Defender/Operational',
    'bits-client': 'Microsoft-Windows-Bits-Client/Operational',
    'dns-client': 'Microsoft-Windows-DNS Client Events/Operational',
    'ntlm': 'Microsoft-Windows-NTLM/Operational', 'smbclient-security': 'Microsoft-Windows-SmbClient/Security',
    'codeintegrity-operational': 'Microsoft-Windows-CodeIntegrity/Operational',
    'firewall-as': 'Microsoft-Windows-Windows Firewall With Advanced Security/Firewall',
    'capi2': 'Microsoft-Windows-CAPI2/Operational',
    'terminalservices-localsessionmanager': 'Microsoft-Windows-TerminalServices-LocalSessionManager/Operational',
}

def wild(v):
    """A string the Sigma wildcard pattern v matches (escapes honoured)."""
    out, i = [], 0
    while i < len(v):
        c = v[i]
        if c == '\\' and i + 1 < len(v) and v[i + 1] in '*?\\':
            out.append(v[i + 1]); i += 2; continue
        if c == '*':
            out.append(random.choice(['', 'Ab3', 'x y'])); i += 1; continue
        if c == '?':
            out.append('Q'); i += 1; continue
        out.append(c); i += 1
    return ''.join(out)

def regex_sample(pattern, mods):
    """A string the regular expression matches (Python's parser; verified with re.search), or
    None when the expression uses what the sampler does not build (back references…)."""
    import re
    try:
        import re._parser as sre_parse
        from re._constants import (ANY, ASSERT, ASSERT_NOT, AT, BRANCH, CATEGORY, IN, LITERAL,
                                   MAX_REPEAT, MIN_REPEAT, NEGATE, NOT_LITERAL, RANGE, SUBPATTERN,
                                   POSSESSIVE_REPEAT, ATOMIC_GROUP)
    except ImportError:
        return None
    cats = {'CATEGORY_DIGIT': '7', 'CATEGORY_NOT_DIGIT': 'x', 'CATEGORY_SPACE': ' ',
            'CATEGORY_NOT_SPACE': 'x', 'CATEGORY_WORD': 'w', 'CATEGORY_NOT_WORD': '-'}

    def gen(items):
        out = []
        for op, av in items:
            if op == LITERAL: out.append(chr(av))
            elif op == NOT_LITERAL: out.append('x' if av != ord('x') else 'y')
            elif op == ANY: out.append('x')
            elif op == IN:
                neg = any(o == NEGATE for o, _ in av)
                if neg:
                    for c in 'xQ7-~ ':
                        if not in_set(av, c): out.append(c); break
                    else: raise ValueError
                else:
                    o, a = next((o, a) for o, a in av if o != NEGATE)
                    if o == LITERAL: out.append(chr(a))
                    elif o == RANGE: out.append(chr(a[0]))
                    elif o == CATEGORY: out.append(cats.get(str(a), 'x'))
                    else: raise ValueError
            elif op in (MAX_REPEAT, MIN_REPEAT, POSSESSIVE_REPEAT):
                lo, hi, sub = av
                n = lo if hi == lo else min(hi, lo + random.randint(0, 2))
                out.append(''.join(gen(sub) for _ in range(n)))
            elif op in (SUBPATTERN,):
                out.append(gen(av[-1]))
            elif op == ATOMIC_GROUP: out.append(gen(av))
            elif op == BRANCH: out.append(gen(random.choice(av[1])))
            elif op == AT: pass
            elif op == CATEGORY: out.append(cats.get(str(av), 'x'))
            elif op in (ASSERT, ASSERT_NOT): pass
            else: raise ValueError
        return ''.join(out)

    cat_re = {'CATEGORY_DIGIT': r'\d', 'CATEGORY_NOT_DIGIT': r'\D', 'CATEGORY_SPACE': r'\s',
              'CATEGORY_NOT_SPACE': r'\S', 'CATEGORY_WORD': r'\w', 'CATEGORY_NOT_WORD': r'\W'}

    def in_set(av, c):
        for o, a in av:
            if o == LITERAL and c.lower() == chr(a).lower(): return True
            if o == RANGE and (a[0] <= ord(c.lower()) <= a[1] or a[0] <= ord(c.upper()) <= a[1]): return True
            if o == CATEGORY and re.fullmatch(cat_re.get(str(a), '.'), c): return True
        return False

    flags = 0
    if 'i' in mods: flags |= re.I
    if 'm' in mods: flags |= re.M
    if 's' in mods: flags |= re.S
    try:
        tree = sre_parse.parse(pattern, flags)
    except Exception:
        return None
    for _ in range(5):
        try:
            sample = gen(list(tree))
        except Exception:
            return None
        try:
            if re.search(pattern, sample, flags): return sample
        except Exception:
            return None
    return None

def case(s):
    r = random.random()
    if r < 0.15: return s.upper()
    if r < 0.3: return s.lower()
    return s

def one_value(v, mods):
    """A value that satisfies (field|mods: v), or None when we cannot make one."""
    if v is None: return None
    if isinstance(v, bool): return v
    if isinstance(v, (int, float)):
        if 'gt' in mods: return v + 1
        if 'gte' in mods: return v
        if 'lt' in mods: return v - 1
        if 'lte' in mods: return v
        return v
    s = str(v)
    utf16 = mods & {'wide', 'utf16le', 'utf16be', 'utf16'}
    if 're' in mods:
        return regex_sample(s, mods)
    if 'expand' in mods or (utf16 and not mods & {'base64', 'base64offset'}):
        return None
    if 'cidr' in mods:
        try:
            net = ipaddress.ip_network(s, strict=False)
            return str(net.network_address + (1 if net.num_addresses > 1 else 0))
        except ValueError:
            return None
    t = wild(s) if 'base64' not in mods and 'base64offset' not in mods else s
    if 'base64' in mods or 'base64offset' in mods:
        if mods & {'wide', 'utf16le'}: raw = t.encode('utf-16-le')
        elif 'utf16be' in mods: raw = t.encode('utf-16-be')
        elif 'utf16' in mods: raw = b'\xff\xfe' + t.encode('utf-16-le')
        else: raw = t.encode()
        t = base64.b64encode(raw).decode()
    elif 'cased' not in mods:
        t = case(t)
    if 'contains' in mods: t = 'pre ' + t + ' post'
    elif 'startswith' in mods: t = t + '_tail'
    elif 'endswith' in mods: t = 'C:\\dir\\' + t
    return t

def fill(sel, ev):
    if isinstance(sel, list):
        if sel and all(isinstance(x, dict) for x in sel):
            fill(random.choice(sel), ev)
        elif sel:
            kw = random.choice(sel)
            if isinstance(kw, str): ev['Details'] = 'kw ' + case(wild(kw)) + ' end'
        return
    if not isinstance(sel, dict): return
    for key, v in sel.items():
        parts = str(key).split('|')
        field, mods = parts[0], set(parts[1:])
        if not field:
            continue
        if 'exists' in mods:
            if v is True: ev[field] = 'present'
            else: ev.pop(field, None)
            continue
        if 'fieldref' in mods:
            ref = v if not isinstance(v, list) else v[0]
            ev.setdefault(ref, 'SameValue')
            ev[field] = ev[ref]
            continue
        vals = v if isinstance(v, list) else [v]
        if 'all' in mods and all(isinstance(x, str) for x in vals):
            parts_ = [one_value(x, mods - {'startswith', 'endswith'} | {'contains'}) for x in vals]
            if None in parts_: continue
            ev[field] = ' '.join(parts_)
            continue
        if not vals: continue
        x = one_value(random.choice(vals), mods)
        if x is None:
            if random.choice(vals) is None: ev.pop(field, None)
            continue
        ev[field] = x

LINUX = {'process_creation': 1, 'network_connection': 3, 'file_event': 11}


def route(ls):
    cat, svc = ls.get('category'), ls.get('service')
    if ls.get('product') == 'linux' and not svc and cat in LINUX:
        return 'Linux-Sysmon/Operational', LINUX[cat]
    if ls.get('product') not in (None, 'windows'): return None
    if cat:
        if cat not in CAT: return None
        ch, eid = CAT[cat]
        if svc and SVC.get(svc) != ch: return None
        return ch, eid
    if svc in SVC: return SVC[svc], None
    return None

def main():
    out = sys.stdout
    n = 0
    for d in sys.argv[1:]:
        for f in sorted(glob.glob(d + '/**/*.yml', recursive=True)):
            try:
                docs = list(yaml.safe_load_all(open(f, encoding='utf-8')))
            except Exception:
                continue
            for r in docs:
                if not isinstance(r, dict) or 'detection' not in r or 'correlation' in r: continue
                if r.get('status') in ('deprecated', 'unsupported'): continue
                rt = route(r.get('logsource') or {})
                if not rt: continue
                det = r['detection']
                names = [k for k in det if k not in ('condition', 'timeframe')]
                for variant in range(4):
                    ev = {'Channel': rt[0], 'EventID': rt[1] if rt[1] is not None else 1,
                          'SourceName': 'Synth', 'Hostname': 'ws1.corp', 'RecordNumber': n}
                    if variant == 0:
                        chosen = [k for k in names if not k.startswith('filter')]
                    elif variant == 1:
                        chosen = names
                    else:
                        chosen = random.sample(names, k=random.randint(1, len(names)))
                    for k in chosen: fill(det[k], ev)
                    if 'Provider_Name' in ev: ev['SourceName'] = ev.pop('Provider_Name')
                    if rt[1] is not None: ev['EventID'] = rt[1]
                    if not isinstance(ev.get('EventID'), int):
                        try: ev['EventID'] = int(ev['EventID'])
                        except Exception: ev['EventID'] = rt[1] or 1
                    out.write(json.dumps(ev) + '\n')
                    n += 1
    print(n, 'events', file=sys.stderr)

main()
