#!/usr/bin/env bash
# Configures and builds one CMake preset (debug, release, asan, fuzz): scripts/build.sh PRESET
#
# The release preset is built with profile-guided optimization when GCC builds it and the
# shared data is there (README, "Building and testing by hand"): an instrumented detection
# benchmark (preset pgo-train) runs over the first OTRF events with the SigmaHQ rules, and the
# release build is optimized with that profile. The profile is kept under build/pgo/ per
# source state and compiler, so a rebuild of unchanged sources trains nothing again.
# MAMORI_PGO=0 builds release without it.
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"
jobs="$(nproc)"

pgo_flags=(-DMAMORI_PGO= -DMAMORI_PGO_DIR=)
if [[ "$preset" == release && "${MAMORI_PGO:-1}" != 0 ]]; then
  data="${MAMORI_DATA_DIR:-$PWD/../shared/data}"
  cc="${CC:-cc}"
  if ! "$cc" --version 2>/dev/null | grep -q 'Free Software Foundation'; then
    echo "build: $cc is not GCC; release built without profile-guided optimization" >&2
  elif [[ ! -d "$data/otrf" || ! -d "$data/sigma/rules" ]]; then
    echo "build: no OTRF recordings or SigmaHQ rules under $data; release built without" \
         "profile-guided optimization" >&2
  else
    # the profile belongs to these sources, build files and compiler
    stamp="$( { "$cc" --version | head -1
                find . -path './build*' -prune -o -path ./.git -prune -o -type f \( -name '*.[ch]' \
                     -o -name CMakeLists.txt -o -name CMakePresets.json \) -print0 | sort -z |
                  xargs -0 sha256sum
                sha256sum scripts/build.sh
              } | sha256sum | cut -c1-16 )"
    profile="$PWD/build/pgo/profile-$stamp"
    if [[ ! -f "$profile/trained" ]]; then
      rm -rf build/pgo
      mkdir -p "$profile"
      echo "build: training the profile for profile-guided optimization ($profile)"
      cmake --preset pgo-train -DMAMORI_PGO_DIR="$profile" -DMAMORI_DATA_DIR="$data" >/dev/null
      cmake --build build/pgo/train -j "$jobs" --target bench_detect_bench
      # cold, warm and end-to-end detection, ECS events: the paths mamorid and mamorictl take
      build/pgo/train/bench/bench_detect_bench --runs 1 --events 150000 >"$profile/training.log" 2>&1 ||
        { cat "$profile/training.log" >&2; echo "build: the training run failed" >&2; exit 1; }
      touch "$profile/trained"
    fi
    pgo_flags=(-DMAMORI_PGO=use -DMAMORI_PGO_DIR="$profile")
  fi
fi

if [[ "$preset" == release ]]; then
  cmake --preset "$preset" "${pgo_flags[@]}" >/dev/null
else
  cmake --preset "$preset" >/dev/null
fi
cmake --build --preset "$preset" -j "$jobs"
