"""bench/scan_bench.py, the capacity-planning run of `mamorictl scan` over the OTRF recordings,
on a few thousand lines: it builds its NDJSON file from the zips once and reuses it, controls
the page cache both ways, and reports what `mamorictl scan` printed (so the bench does not rot
when the summary line changes)."""
import json
import os
import shutil
import statistics
import subprocess
import sys

import pytest

from harness import BUILD, DATA, temp_dir

BENCH = os.path.join(os.path.dirname(__file__), "../../bench/scan_bench.py")
pytestmark = pytest.mark.skipif(not os.path.isdir(os.path.join(DATA, "otrf")) or
                                not os.path.isdir(os.path.join(DATA, "sigma", "rules")),
                                reason="OTRF or SigmaHQ data not present")

LINES = 3000


def bench(work, *args):
    p = subprocess.run([sys.executable, BENCH, "--build", BUILD, "--data", DATA, "--work", work,
                        "--events", str(LINES), "--json"] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout), p.stderr


def test_warm_and_cold_runs_report_the_scan():
    work = temp_dir("mamori-it-scan-bench-")
    try:
        warm, err = bench(work, "--runs", "2")
        assert "%d lines" % LINES in err  # the file was built
        files = os.listdir(work)
        assert len(files) == 1 and files[0].endswith(".jsonl")
        with open(os.path.join(work, files[0]), "rb") as f:
            assert sum(1 for _ in f) == LINES
        assert warm["cache"] == "warm" and len(warm["runs"]) == 2
        for r in warm["runs"]:
            assert r["events"] == LINES  # lines that are not JSON count as rejected events
            assert r["alerts"] == warm["runs"][0]["alerts"] > 0
            assert r["per_core"] > 0 and r["wall_s"] > 0
            assert abs(r["cpu_s"] - r["scan_cpu_s"] - r["ahead_cpu_s"]) <= 0.0015
        assert warm["median"]["per_core"] == statistics.median(r["per_core"] for r in warm["runs"])

        cold, err = bench(work, "--runs", "1", "--cache", "cold")
        assert "lines" not in err  # the file was reused, not built again
        assert cold["cache"] == "cold"
        assert cold["runs"][0]["events"] == LINES and cold["runs"][0]["alerts"] == warm["runs"][0]["alerts"]
    finally:
        shutil.rmtree(work, ignore_errors=True)
