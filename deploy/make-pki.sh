#!/usr/bin/env bash
# deploy/make-pki.sh — the PKI that mutual TLS between agents and ingest needs
# (docs/protocol.md §1), made with the openssl CLI for operators who do not bring their own.
# It makes the same certificates as core/pki.c (what `mamorid --dev` uses): EC P-256 keys,
# SHA-256 signatures.
#
# Usage:
#   deploy/make-pki.sh OUTDIR [--agents N] [--tenant T] [--server-name NAME]...
#                             [--agent-prefix P] [--first-agent K] [--days D] [--jobs J]
#
#   OUTDIR/ca.pem, ca.key              CA: CN "Mamori CA", 10 years, CA:TRUE,
#                                      keyUsage keyCertSign+cRLSign
#   OUTDIR/server.pem, server.key      server certificate: CN = first --server-name,
#                                      one subjectAltName per --server-name (IP literals
#                                      become IP SANs), extendedKeyUsage serverAuth
#   OUTDIR/agents/<id>.pem, <id>.key   N agent certificates: subject O = tenant, CN = <id>,
#                                      extendedKeyUsage clientAuth; <id> = P-NNNNN
#                                      (zero-padded, from K), as mamori-agent-sim names them
#
#   --agents N        agent certificates to make (default 0)
#   --tenant T        tenant written into agent certificates (default "default")
#   --server-name X   DNS name or IP address of the ingest endpoint; repeat for several
#                     (default: localhost and 127.0.0.1)
#   --agent-prefix P  agent id prefix (default "sim"); ids are P-00000, P-00001, ...
#   --first-agent K   number of the first agent (default 0)
#   --days D          validity of server and agent certificates (default 825)
#   --jobs J          agent certificates made in parallel (default: number of CPUs)
#
# Idempotent: a file that exists is kept, never overwritten — above all the CA, whose loss
# or replacement would orphan every certificate it signed. Re-running with a larger
# --agents adds the missing agents only. To reissue the server certificate (e.g. with other
# names), delete server.pem and server.key first. Private keys are written mode 0600 and
# unencrypted: protect OUTDIR, and keep ca.key offline in production (only issuing needs it).
#
# Start the server with ingest.tls_ca = OUTDIR/ca.pem, tls_cert = OUTDIR/server.pem,
# tls_key = OUTDIR/server.key; run the simulator with
#   mamori-agent-sim --server HOST:7443 --ca OUTDIR/ca.pem --cert-dir OUTDIR --agents N
set -euo pipefail

die() { echo "make-pki: $*" >&2; exit 1; }
usage() { sed -n '4,40p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

[ $# -ge 1 ] || usage
case "$1" in -h|--help) usage ;; -*) die "first argument must be OUTDIR (got '$1')" ;; esac
OUTDIR=$1
shift
AGENTS=0
TENANT=default
PREFIX=sim
FIRST=0
DAYS=825
JOBS=$(nproc 2>/dev/null || echo 2)
SERVER_NAMES=()
while [ $# -gt 0 ]; do
  case "$1" in
    --agents) AGENTS=${2:?--agents needs a number}; shift 2 ;;
    --tenant) TENANT=${2:?--tenant needs a name}; shift 2 ;;
    --server-name) SERVER_NAMES+=("${2:?--server-name needs a name}"); shift 2 ;;
    --agent-prefix) PREFIX=${2:?--agent-prefix needs a prefix}; shift 2 ;;
    --first-agent) FIRST=${2:?--first-agent needs a number}; shift 2 ;;
    --days) DAYS=${2:?--days needs a number}; shift 2 ;;
    --jobs) JOBS=${2:?--jobs needs a number}; shift 2 ;;
    -h|--help) usage ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
[ ${#SERVER_NAMES[@]} -gt 0 ] || SERVER_NAMES=(localhost 127.0.0.1)

# The identity rules of protocol.md §1, checked before anything is written.
[[ $AGENTS =~ ^[0-9]+$ ]] || die "--agents: '$AGENTS' is not a number"
[[ $FIRST =~ ^[0-9]+$ ]] || die "--first-agent: '$FIRST' is not a number"
[[ $DAYS =~ ^[1-9][0-9]*$ ]] || die "--days: '$DAYS' is not a positive number"
[[ $JOBS =~ ^[1-9][0-9]*$ ]] || die "--jobs: '$JOBS' is not a positive number"
[[ $TENANT =~ ^[A-Za-z0-9._-]{1,64}$ ]] || die "--tenant: '$TENANT' must be 1-64 of [A-Za-z0-9._-]"
[[ $PREFIX =~ ^[A-Za-z0-9._:@-]{1,100}$ ]] || die "--agent-prefix: '$PREFIX' must be 1-100 of [A-Za-z0-9._:@-]"
for name in "${SERVER_NAMES[@]}"; do
  [[ $name =~ ^[A-Za-z0-9.:*-]{1,253}$ ]] || die "--server-name: '$name' is neither a host name nor an IP address"
done
command -v openssl >/dev/null || die "openssl not found"

mkdir -p "$OUTDIR/agents"
chmod 700 "$OUTDIR"
CA_CERT=$OUTDIR/ca.pem
CA_KEY=$OUTDIR/ca.key
TMP=$(mktemp -d "$OUTDIR/.make-pki.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

serial() { echo "0x$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n' | sed 's/^./4/')"; }

# Moves a finished file into place without ever replacing one (ln fails if it exists).
install_new() { # TMPFILE DEST
  ln "$1" "$2" 2>/dev/null || die "$2 appeared while it was being made; nothing overwritten"
  rm -f "$1"
}

new_key() { # DEST (mode 0600)
  (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>"$1.err") ||
    die "cannot generate key $1: $(cat "$1.err")"
  rm -f "$1.err"
}

# Signs a CSR for KEY with the CA. Extensions come from an -extfile section.
sign() { # KEY SUBJECT EXTFILE OUT
  openssl req -new -key "$1" -subj "$2" 2>"$4.err" |
    openssl x509 -req -CA "$CA_CERT" -CAkey "$CA_KEY" -set_serial "$(serial)" -days "$DAYS" -sha256 \
      -extfile "$3" -extensions ext -out "$4" 2>>"$4.err" ||
    die "cannot sign $4: $(cat "$4.err")"
  rm -f "$4.err"
}

# ---- CA ----
if [ -e "$CA_CERT" ] && [ -e "$CA_KEY" ]; then
  echo "make-pki: keeping existing CA $CA_CERT" >&2
elif [ -e "$CA_CERT" ] || [ -e "$CA_KEY" ]; then
  die "only one of $CA_CERT and $CA_KEY exists: restore the other (a CA is never remade over half of one)"
else
  new_key "$TMP/ca.key"
  cat >"$TMP/ca.ext" <<'EOF'
[req]
distinguished_name = dn
[dn]
[ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF
  openssl req -new -x509 -key "$TMP/ca.key" -subj "/CN=Mamori CA" -days 3650 -sha256 -set_serial "$(serial)" \
    -config "$TMP/ca.ext" -extensions ext -out "$TMP/ca.pem" 2>"$TMP/ca.err" ||
    die "cannot make the CA: $(cat "$TMP/ca.err")"
  chmod 644 "$TMP/ca.pem"
  install_new "$TMP/ca.key" "$CA_KEY"
  install_new "$TMP/ca.pem" "$CA_CERT"
  echo "make-pki: created CA $CA_CERT" >&2
fi
openssl x509 -in "$CA_CERT" -noout 2>/dev/null || die "$CA_CERT is not a PEM certificate"

# ---- server ----
SERVER_CERT=$OUTDIR/server.pem
SERVER_KEY=$OUTDIR/server.key
if [ -e "$SERVER_CERT" ] && [ -e "$SERVER_KEY" ]; then
  openssl verify -CAfile "$CA_CERT" -purpose sslserver "$SERVER_CERT" >/dev/null 2>&1 ||
    die "$SERVER_CERT does not verify against $CA_CERT: delete server.pem and server.key to reissue"
  text=$(openssl x509 -in "$SERVER_CERT" -noout -text)
  for name in "${SERVER_NAMES[@]}"; do
    grep -Eq "(DNS:|IP Address:)${name//./\\.}(,|$)" <<<"$text" ||
      echo "make-pki: warning: existing $SERVER_CERT has no SAN '$name' (delete it and server.key to reissue)" >&2
  done
  echo "make-pki: keeping existing server certificate $SERVER_CERT" >&2
elif [ -e "$SERVER_CERT" ] || [ -e "$SERVER_KEY" ]; then
  die "only one of $SERVER_CERT and $SERVER_KEY exists: delete it to reissue the pair"
else
  sans=()
  for name in "${SERVER_NAMES[@]}"; do
    if [[ $name =~ ^[0-9.]+$ || $name == *:* ]]; then sans+=("IP:$name"); else sans+=("DNS:$name"); fi
  done
  cat >"$TMP/server.ext" <<EOF
[ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = $(IFS=,; echo "${sans[*]}")
EOF
  new_key "$TMP/server.key"
  sign "$TMP/server.key" "/CN=${SERVER_NAMES[0]}" "$TMP/server.ext" "$TMP/server.pem"
  chmod 644 "$TMP/server.pem"
  install_new "$TMP/server.key" "$SERVER_KEY"
  install_new "$TMP/server.pem" "$SERVER_CERT"
  echo "make-pki: created server certificate $SERVER_CERT for ${SERVER_NAMES[*]}" >&2
fi

# ---- agents ----
cat >"$TMP/agent.ext" <<'EOF'
[ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF

make_agent() { # ID
  local id=$1 cert=$OUTDIR/agents/$1.pem key=$OUTDIR/agents/$1.key
  if [ -e "$cert" ] && [ -e "$key" ]; then return 0; fi
  [ -e "$cert" ] || [ -e "$key" ] && die "only one of $cert and $key exists: delete it to reissue the pair"
  new_key "$TMP/$id.key"
  sign "$TMP/$id.key" "/O=$TENANT/CN=$id" "$TMP/agent.ext" "$TMP/$id.pem"
  chmod 644 "$TMP/$id.pem"
  install_new "$TMP/$id.key" "$key"
  install_new "$TMP/$id.pem" "$cert"
}

made=0
running=0
for ((i = FIRST; i < FIRST + AGENTS; i++)); do
  id=$(printf '%s-%05d' "$PREFIX" "$i")
  [ -e "$OUTDIR/agents/$id.pem" ] && [ -e "$OUTDIR/agents/$id.key" ] && continue
  make_agent "$id" &
  made=$((made + 1))
  running=$((running + 1))
  if [ "$running" -ge "$JOBS" ]; then
    wait -n || die "making an agent certificate failed"
    running=$((running - 1))
  fi
done
while [ "$running" -gt 0 ]; do
  wait -n || die "making an agent certificate failed"
  running=$((running - 1))
done
[ "$AGENTS" -eq 0 ] || echo "make-pki: $made agent certificates created, $((AGENTS - made)) kept in $OUTDIR/agents (tenant $TENANT)" >&2
