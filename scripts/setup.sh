#!/usr/bin/env bash
# Installs what Mamori needs to build, test and run, from Debian packages. Idempotent:
# packages already present are skipped, so a second run does nothing.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config clang lld llvm libclang-rt-14-dev
  liburing-dev libssl-dev librocksdb-dev libhyperscan-dev libjemalloc-dev libzstd-dev
  libfyaml-dev libxxhash-dev libzip-dev libcmocka-dev librdkafka-dev libevent-dev
  libcurl4-openssl-dev libjson-c-dev libpcre2-dev
  python3 python3-pytest zstd unzip kcat iproute2 nftables openssl ca-certificates
  # the development Kafka broker (tests/kafka/broker.sh): Java 17+, Maven resolves it once
  openjdk-17-jdk-headless maven procps
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
