"""Writes the committed golden files of the cheap reference checks, computed by the independent
references (torchmetrics, scikit-learn, torch, Python's pickle), never by our code.

Run by scripts/golden/make_golden.sh, which first has the Rust tests write the inputs they
generate (seeded) into a folder:

    python scripts/golden/make_golden.py metrics INPUTS   # metrics/tests/golden/metrics.json
    python scripts/golden/make_golden.py pickle           # checkpoint/tests/golden/pickle/

metrics: for every case under INPUTS/metrics/<case>/ (probs.f32 [N, K], labels.i64 [N], shape
"N K"), the answers of metrics/tests/py/reference_metrics.py, with the SHA-256 of the two input
files (the test checks it, so a changed generator cannot meet stale answers).

pickle: one plain object pickled with protocols 2 to 5 (p<N>.pkl) and the JSON each should decode
to (plain_values.json: tuples as lists, bytes as {"bytes": [...]}, ints beyond 64 bits as
"bigint", infinity as "inf"), read by checkpoint/tests/pickle_vm.rs.
"""
import collections
import hashlib
import json
import pathlib
import pickle
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]


def write_json(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=1, sort_keys=True) + "\n")
    print(f"wrote {path.relative_to(REPO)}")


def metrics(inputs):
    script = REPO / "metrics/tests/py/reference_metrics.py"
    out = {}
    cases = sorted(p for p in (pathlib.Path(inputs) / "metrics").iterdir() if p.is_dir())
    if not cases:
        sys.exit(f"no cases under {inputs}/metrics: did the Rust test write them?")
    for case in cases:
        n, k = case.joinpath("shape").read_text().split()
        res = subprocess.run([sys.executable, script, case, n, k], check=True, capture_output=True)
        value = json.loads(res.stdout)
        sha = hashlib.sha256()
        for f in ("probs.f32", "labels.i64"):
            sha.update(case.joinpath(f).read_bytes())
        value["inputs_sha256"] = sha.hexdigest()
        out[case.name] = value
    write_json(REPO / "metrics/tests/golden/metrics.json", out)


def plain_object(proto):
    o = {"ints": [0, 1, -1, 255, 256, 65535, 65536, -2**31, 2**31, 2**63 - 1, -2**63, 2**64, -2**70],
         "floats": [1.5, -0.0, 1e300, float("inf")], "str": "ünï ✓" * 3, "long_str": "x" * 300,
         "none": None, "bools": [True, False], "tuples": [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4)],
         "nested": {"a": [{"b": (None,)}], 7: "int key"},
         "ordered": collections.OrderedDict([("z", 1), ("a", 2)])}
    shared = [1, 2]
    o["shared"] = [shared, shared]
    if proto >= 3:
        o["bytes"] = b"\x00\xff" * 3
    return o


def as_json(x):
    if isinstance(x, bool) or x is None or isinstance(x, str):
        return x
    if isinstance(x, float):
        return "inf" if x == float("inf") else x
    if isinstance(x, int):
        return x if -2**63 <= x < 2**63 else "bigint"
    if isinstance(x, bytes):
        return {"bytes": list(x)}
    if isinstance(x, (list, tuple)):
        return [as_json(v) for v in x]
    return {str(k): as_json(v) for k, v in x.items()}


def pickles():
    folder = REPO / "checkpoint/tests/golden/pickle"
    folder.mkdir(parents=True, exist_ok=True)
    expected = {}
    for proto in range(2, 6):
        o = plain_object(proto)
        path = folder / f"p{proto}.pkl"
        path.write_bytes(pickle.dumps(o, protocol=proto))
        print(f"wrote {path.relative_to(REPO)}")
        expected[str(proto)] = as_json(o)
    write_json(folder / "plain_values.json", expected)


if __name__ == "__main__":
    if sys.argv[1:2] == ["metrics"] and len(sys.argv) == 3:
        metrics(sys.argv[2])
    elif sys.argv[1:] == ["pickle"]:
        pickles()
    else:
        sys.exit(__doc__)
