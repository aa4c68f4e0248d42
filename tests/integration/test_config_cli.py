"""mamorid --check-config: the shipped example is valid; mistakes are named by key and line."""
import os
import subprocess

from harness import MAMORID, temp_dir

SOURCE = os.environ.get("MAMORI_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))


def check(text):
    d = temp_dir("mamori-cfg-")
    path = os.path.join(d, "m.yaml")
    with open(path, "w") as f:
        f.write(text)
    p = subprocess.run([MAMORID, "--check-config", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return p.returncode, p.stdout + p.stderr


def test_example_config_is_valid_and_complete():
    example = os.path.join(SOURCE, "deploy/mamorid.yaml")
    p = subprocess.run([MAMORID, "--check-config", example], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.returncode == 0, p.stderr
    # every key the server knows is documented in the example
    dump = subprocess.run([MAMORID, "--print-config"], stdout=subprocess.PIPE, text=True, check=True).stdout
    keys = [l.split(":")[0].strip() for l in dump.splitlines() if l.startswith("  ")]
    with open(example) as f:
        text = f.read()
    for k in keys:
        assert "\n  %s:" % k in text, "deploy/mamorid.yaml lacks %s" % k


def test_unknown_key_names_key_and_line():
    rc, out = check("ingest:\n  threads: 2\n  max_frame_byte: 10\n")
    assert rc == 2
    assert "line 3: unknown key 'ingest.max_frame_byte'" in out


def test_out_of_range_value_names_key_and_range():
    rc, out = check("store:\n  zstd_level: 99\n")
    assert rc == 2
    assert "'store.zstd_level' = 99 out of range [1, 22]" in out


def test_bad_yaml_names_line():
    rc, out = check("ingest:\n  threads: [1,\n")
    assert rc == 2
    assert "line" in out and "YAML" in out


def test_missing_file():
    p = subprocess.run([MAMORID, "--check-config", "/nonexistent/m.yaml"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    assert p.returncode == 2 and "No such file" in p.stderr
