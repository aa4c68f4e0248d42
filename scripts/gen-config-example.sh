#!/usr/bin/env bash
# Regenerates deploy/mamorid.yaml from the server's configuration schema (run after adding
# or changing a key; tests/integration/test_config_cli.py checks the file is complete).
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-build/release/server/mamorid}"
{
  cat <<'HEAD'
# mamorid.yaml — every configuration key, with its default, range and meaning.
# Generated from the server's own schema by scripts/gen-config-example.sh (`mamorid
# --print-config`); a test checks that `mamorid --check-config` accepts it and that it lists
# every key. Unknown keys, wrong types and out-of-range values are errors naming the key
# and line. Sizes accept KiB/MiB/GiB.
#
# Per-tenant retention overrides go under store.tenants, e.g.:
#   store:
#     tenants:
#       acme: {retention_days: 365}
# Per-tenant response policy under response.tenants, e.g.:
#   response:
#     tenants:
#       acme: {max_file_bytes: 16MiB, auto_allowed: [isolate, kill_process], auto_max_per_minute: 5}
HEAD
  "$bin" --print-config
} > deploy/mamorid.yaml
"$bin" --check-config deploy/mamorid.yaml
