// tests/differential — an independent Sigma evaluator for cross-checking `mamorictl scan`.
// Evaluates SigmaHQ rules with the sigma-rust crate on NXLog-flat Windows events (one JSON
// object per line), routed by logsource as Mamori routes them (core/logsource.c), and prints
// "<line index>\t<rule id>" for every match. Two of sigma-rust's departures from the Sigma
// specification are compensated by rewriting the rule before it is parsed (`null` holds for
// an absent field; keywords are substring searches); the others are in docs/detection.md §9.1.
use serde_norway::Value;
use sigma_rust::{Event, Rule};
use std::io::{BufRead, BufReader, Write};

/// `Field: null` → `Field|exists: false` (sigma-rust's null needs the field present and null;
/// the generated events never hold JSON null, so the two agree on them).
fn rewrite_map(m: &mut serde_norway::Mapping) {
    let keys: Vec<Value> = m.keys().cloned().collect();
    for k in keys {
        let is_null = matches!(m.get(&k), Some(Value::Null));
        if let (true, Some(name)) = (is_null, k.as_str()) {
            if !name.contains('|') {
                m.remove(&k);
                m.insert(Value::String(format!("{}|exists", name)), Value::Bool(false));
            }
        }
    }
}

/// A keyword list entry becomes `*entry*` (sigma-rust matches keywords against whole values).
fn keyword(s: &str) -> String {
    let mut out = String::new();
    if !s.starts_with('*') {
        out.push('*');
    }
    out.push_str(s);
    if !s.ends_with('*') || s.ends_with("\\*") {
        out.push_str(if s.ends_with('\\') { "\\*" } else { "*" });
    }
    out
}

fn rewrite_rule(text: &str) -> Option<String> {
    let mut doc: Value = serde_norway::from_str(text).ok()?;
    let det = doc.get_mut("detection")?.as_mapping_mut()?;
    for (k, v) in det.iter_mut() {
        if matches!(k.as_str(), Some("condition") | Some("timeframe")) {
            continue;
        }
        match v {
            Value::Mapping(m) => rewrite_map(m),
            Value::Sequence(seq) => {
                for item in seq.iter_mut() {
                    match item {
                        Value::Mapping(m) => rewrite_map(m),
                        Value::String(s) => *s = keyword(s),
                        _ => {}
                    }
                }
            }
            Value::String(s) => *s = keyword(s),
            _ => {}
        }
    }
    serde_norway::to_string(&doc).ok()
}

/// (Sigma service, EventID table) of a channel: the part of core/logsource.c's channel table
/// that SigmaHQ's Windows rules and the generated events use (an event of another channel
/// meets only the rules without service and category).
fn service_of(channel: &str) -> Option<(&'static str, &'static str)> {
    let c = channel.to_ascii_lowercase();
    let rows: &[(&str, &str, &str)] = &[
        ("security", "security", "security"),
        ("system", "system", ""),
        ("application", "application", ""),
        ("microsoft-windows-sysmon/operational", "sysmon", "sysmon"),
        ("linux-sysmon/operational", "sysmon", "sysmon"),
        ("microsoft-windows-powershell/operational", "powershell", "ps"),
        ("powershellcore/operational", "", "ps"),
        ("windows powershell", "powershell-classic", "psc"),
        ("microsoft-windows-taskscheduler/operational", "taskscheduler", ""),
        ("microsoft-windows-wmi-activity/operational", "wmi", ""),
        ("microsoft-windows-windows defender/operational", "windefend", ""),
        ("microsoft-windows-bits-client/operational", "bits-client", ""),
        ("microsoft-windows-dns client events/operational", "dns-client", ""),
        ("microsoft-windows-ntlm/operational", "ntlm", ""),
        ("microsoft-windows-smbclient/security", "smbclient-security", ""),
        ("microsoft-windows-terminalservices-localsessionmanager/operational", "terminalservices-localsessionmanager", ""),
        ("microsoft-windows-codeintegrity/operational", "codeintegrity-operational", ""),
        ("microsoft-windows-windows firewall with advanced security/firewall", "firewall-as", ""),
        ("microsoft-windows-capi2/operational", "capi2", ""),
    ];
    for (name, svc, table) in rows {
        if c == *name {
            return Some((svc, table));
        }
    }
    None
}

fn categories(table: &str, id: i64) -> Vec<&'static str> {
    match (table, id) {
        ("sysmon", 1) => vec!["process_creation"],
        ("sysmon", 2) => vec!["file_change"],
        ("sysmon", 3) => vec!["network_connection"],
        ("sysmon", 4) | ("sysmon", 16) => vec!["sysmon_status"],
        ("sysmon", 5) => vec!["process_termination"],
        ("sysmon", 6) => vec!["driver_load"],
        ("sysmon", 7) => vec!["image_load"],
        ("sysmon", 8) => vec!["create_remote_thread"],
        ("sysmon", 9) => vec!["raw_access_thread"],
        ("sysmon", 10) => vec!["process_access"],
        ("sysmon", 11) => vec!["file_event"],
        ("sysmon", 12) => vec!["registry_add", "registry_delete", "registry_event"],
        ("sysmon", 13) => vec!["registry_set", "registry_event"],
        ("sysmon", 14) => vec!["registry_rename", "registry_event"],
        ("sysmon", 15) => vec!["create_stream_hash"],
        ("sysmon", 17) | ("sysmon", 18) => vec!["pipe_created"],
        ("sysmon", 19) | ("sysmon", 20) | ("sysmon", 21) => vec!["wmi_event"],
        ("sysmon", 22) => vec!["dns_query"],
        ("sysmon", 23) => vec!["file_delete"],
        ("sysmon", 24) => vec!["clipboard_capture"],
        ("sysmon", 25) => vec!["process_tampering"],
        ("sysmon", 26) => vec!["file_delete", "file_delete_detected"],
        ("sysmon", 27) => vec!["file_block_executable"],
        ("sysmon", 28) => vec!["file_block_shredding"],
        ("sysmon", 29) => vec!["file_executable_detected"],
        ("sysmon", 255) => vec!["sysmon_error"],
        ("security", 4688) => vec!["process_creation"],
        ("ps", 4103) => vec!["ps_module"],
        ("ps", 4104) => vec!["ps_script"],
        ("psc", 400) => vec!["ps_classic_start"],
        ("psc", 600) => vec!["ps_classic_provider_start"],
        ("psc", 800) => vec!["ps_classic_script"],
        _ => vec![],
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: sigma-oracle EVENTS.jsonl RULEDIR...");
        std::process::exit(2);
    }
    let mut rules: Vec<(String, Rule)> = Vec::new();
    let mut failed = 0;
    for dir in &args[2..] {
        for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("sigma-oracle: {}: {}", dir, e);
                    std::process::exit(2);
                }
            };
            let p = entry.path();
            if !p.is_file() || p.extension().map(|e| e != "yml").unwrap_or(true) {
                continue;
            }
            let text = match std::fs::read_to_string(p) {
                Ok(t) => t,
                Err(e) => {
                    failed += 1;
                    eprintln!("sigma-oracle: {}: {}", p.display(), e);
                    continue;
                }
            };
            if text.contains("\ncorrelation:") {
                continue;
            }
            let text = rewrite_rule(&text).unwrap_or(text);
            match sigma_rust::rule_from_yaml(&text) {
                Ok(r) => {
                    let st = format!("{:?}", r.status).to_lowercase();
                    if st.contains("deprecated") || st.contains("unsupported") {
                        continue;
                    }
                    let id = r.id.clone().unwrap_or_default();
                    rules.push((id, r));
                }
                Err(e) => {
                    failed += 1;
                    eprintln!("sigma-rust rejects {}: {}", p.display(), e);
                }
            }
        }
    }
    eprintln!("{} rules loaded, {} rejected", rules.len(), failed);
    let f = match std::fs::File::open(&args[1]) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("sigma-oracle: {}: {}", args[1], e);
            std::process::exit(2);
        }
    };
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    for (idx, line) in BufReader::new(f).lines().enumerate() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                eprintln!("sigma-oracle: {} line {}: {}", args[1], idx + 1, e);
                std::process::exit(2);
            }
        };
        let mut v: serde_json::Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(_) => continue,
        };
        let obj = match v.as_object_mut() {
            Some(o) => o,
            None => continue,
        };
        let channel = obj.get("Channel").and_then(|c| c.as_str()).unwrap_or("").to_string();
        let id = obj
            .get("EventID")
            .and_then(|c| c.as_i64().or_else(|| c.as_str().and_then(|s| s.parse().ok())))
            .unwrap_or(-1);
        let (svc, table) = match service_of(&channel) {
            Some(x) => x,
            None => ("?", ""),
        };
        let cats = categories(table, id);
        // Sysmon for Linux is the one Linux channel core/logsource.c routes
        let product = if channel.eq_ignore_ascii_case("Linux-Sysmon/Operational") { "linux" } else { "windows" };
        // Sigma's System field names for NXLog's
        if let Some(s) = obj.get("SourceName").cloned() {
            obj.entry("Provider_Name").or_insert(s);
        }
        if let Some(s) = obj.get("Hostname").cloned() {
            obj.entry("Computer").or_insert(s);
        }
        if table == "security" && id == 4688 {
            if let Some(s) = obj.get("NewProcessName").cloned() {
                obj.entry("Image").or_insert(s);
            }
            if let Some(s) = obj.get("ParentProcessName").cloned() {
                obj.entry("ParentImage").or_insert(s);
            }
        }
        let event = match Event::try_from(v) {
            Ok(e) => e,
            Err(_) => continue,
        };
        for (rid, r) in &rules {
            let ls = &r.logsource;
            if let Some(p) = &ls.product {
                if p != product {
                    continue;
                }
            }
            if let Some(s) = &ls.service {
                if s != svc {
                    continue;
                }
            }
            if let Some(c) = &ls.category {
                if !cats.iter().any(|x| x == c) {
                    continue;
                }
            }
            if ls.product.is_none() && ls.service.is_none() && ls.category.is_none() {
                continue;
            }
            if r.is_match(&event) {
                if writeln!(out, "{}\t{}", idx, rid).is_err() {
                    std::process::exit(1); /* stdout closed */
                }
            }
        }
    }
}
