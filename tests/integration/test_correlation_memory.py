"""The correlation engine's memory bound (issue 5, docs/detection.md §11.3): 5,000,000 distinct
group-by keys through three correlations bounded at 200,000 keys each end with exactly the
bound held, every other key's eviction counted, and a peak RSS no larger than a run with a
fifth of the keys — memory follows the configured bound, not the number of keys seen.
Driven through bench/micro/correlate_bench.c (the real engine, its own process for RSS)."""
import json
import os
import subprocess

from harness import BUILD

BENCH = os.path.join(BUILD, "bench/bench_correlate_bench")
KEYS_MAX = 200_000
CORRELATIONS = 3  # every match feeds three correlations in the benchmark


def run(keys):
    p = subprocess.run([BENCH, "--keys", str(keys), "--keys-max", str(KEYS_MAX), "--runs", "1"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_five_million_keys_stay_under_the_bound():
    small = run(1_000_000)
    big = run(5_000_000)
    for r, keys in ((small, 1_000_000), (big, 5_000_000)):
        assert r["keys_held"] == CORRELATIONS * KEYS_MAX, r
        assert r["evicted_keys"] == CORRELATIONS * (keys - KEYS_MAX), r
    # five times the distinct keys, the same memory (a little allocator noise allowed)
    assert big["peak_rss_mib"] <= small["peak_rss_mib"] * 1.15 + 16, (small, big)
    assert big["peak_rss_mib"] < 1024, big
