"""Writes the committed golden files of the cheap reference checks, computed by the independent
references (torchmetrics, scikit-learn, torch, torchvision, PIL, Python's pickle), never by
our code.

Run by scripts/golden/make_golden.sh, which first has the Rust tests write the inputs they
generate (seeded) into a folder:

    python scripts/golden/make_golden.py metrics INPUTS   # metrics/tests/golden/metrics.json
    python scripts/golden/make_golden.py pickle           # checkpoint/tests/golden/pickle/
    python scripts/golden/make_golden.py pth              # checkpoint/tests/golden/pth/
    python scripts/golden/make_golden.py preprocess INPUTS  # data/tests/golden/preprocess*
    python scripts/golden/make_golden.py synth INPUTS     # data/tests/golden/synth.json

metrics: for every case under INPUTS/metrics/<case>/ (probs.f32 [N, K], labels.i64 [N], shape
"N K"), the answers of metrics/tests/py/reference_metrics.py, with the SHA-256 of the two input
files (the test checks it, so a changed generator cannot meet stale answers).

pickle: one plain object pickled with protocols 2 to 5 (p<N>.pkl) and the JSON each should decode
to (plain_values.json: tuples as lists, bytes as {"bytes": [...]}, ints beyond 64 bits as
"bigint", infinity as "inf"), read by checkpoint/tests/pickle_vm.rs.

pth: the files torch.save (and safetensors' save_file) writes for checkpoint/tests/malformed.rs
(small.pth, legacy.pth, quantized.pth, sparse.pth) and checkpoint/tests/pth_edge_cases.rs (layouts,
dtypes, container shapes), with expected.json: {file: {tensor: {"shape", "f32" bit patterns or
"i64" values}}}, what a reader must return (a nested state dict's, `module.` stripped).

preprocess: for every case in INPUTS/preprocess/cases.json (a PNG each, written by
data/tests/preprocess.rs), PIL's resize of convert("L"/"RGB") (<name>.pil.u8, C x H x W bytes) and
torchvision's antialiased float resize (<name>.tv.f32, C x H x W little-endian f32), plus
preprocess.json: each case's parameters and the SHA-256 of its decoded pixels.

synth: scikit-learn's ridge classifier and a small torch CNN (seeded, 2 threads) trained on the
synthetic expression set written to INPUTS/synth by data/tests/synth.rs: their validation
accuracies and the SHA-256 of the decoded pixels they saw (synth.json).
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


DESCRIBE = (REPO / "checkpoint/tests/py/describe.py").read_text()


def stable_legacy_keys(path):
    """The legacy format names storages by memory address; renumbers them (same lengths, so the
    pickles stay valid) so that the file is the same on every run."""
    import re
    data = path.read_bytes()
    keys = []
    for k in re.findall(rb"X(?:.{4})(\d{9,})", data, flags=re.S):
        if k not in keys:
            keys.append(k)
    for i, k in enumerate(keys):
        data = data.replace(k, str(i).zfill(len(k)).encode())
    path.write_bytes(data)


def sorted_safetensors_metadata(path):
    """safetensors writes `__metadata__` in hash order; sorts it (same header length)."""
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":")).encode()
    assert len(text) <= n, "the rewritten header must not grow"
    path.write_bytes(data[:8] + text.ljust(n, b" ") + data[8 + n:])


def pth():
    import argparse
    import os
    import torch
    from safetensors.torch import save_file
    env = {"torch": torch}
    exec(DESCRIBE, env)
    describe = env["describe"]
    d = REPO / "checkpoint/tests/golden/pth"
    d.mkdir(parents=True, exist_ok=True)
    expected = {}

    # checkpoint/tests/malformed.rs
    torch.manual_seed(2)
    sd = {"conv.weight": torch.randn(2, 1, 3, 3), "bn.num_batches_tracked": torch.tensor(5),
          "t": torch.randn(3, 4).t(), "h": torch.randn(3).half()}
    torch.save(sd, d / "small.pth")
    expected["small.pth"] = describe(sd)
    # One storage: the legacy format writes storages in the order of their memory addresses.
    torch.save({"conv.weight": sd["conv.weight"]}, d / "legacy.pth",
               _use_new_zipfile_serialization=False)
    stable_legacy_keys(d / "legacy.pth")
    torch.save({"q": torch.quantize_per_tensor(torch.randn(4), 0.1, 0, torch.qint8)},
               d / "quantized.pth")
    torch.save({"s": torch.eye(3).to_sparse()}, d / "sparse.pth")

    # checkpoint/tests/pth_edge_cases.rs
    cases = {}
    def save(name, obj, exp, **kw):
        torch.save(obj, d / name, **kw)
        cases[name] = describe(exp)

    torch.manual_seed(1)
    base = torch.randn(4, 5)
    nc = {"t": base.t(), "col": base[:, 1], "corner": base[1:, 2:], "step": base[::2, ::3],
          "expanded": torch.randn(3, 1).expand(3, 4)}
    save("non_contiguous.pth", nc, nc)
    dtypes = {"f16": torch.randn(3, 4).half(), "bf16": torch.randn(5).bfloat16(),
              "f64": torch.randn(2, 3, dtype=torch.float64), "f16_t": torch.randn(3, 2).half().t(),
              "i32": torch.randint(-2**31, 2**31 - 1, (6,), dtype=torch.int32),
              "i16": torch.randint(-2**15, 2**15 - 1, (4,), dtype=torch.int16),
              "i8": torch.randint(-128, 127, (4,), dtype=torch.int8),
              "u8": torch.randint(0, 255, (4,), dtype=torch.uint8),
              "bool": torch.tensor([True, False, True]),
              "i64_big": torch.tensor([-2**62, 2**62 + 5, -1]),
              "scalar_f": torch.tensor(2.5), "scalar_i": torch.tensor(7), "empty": torch.zeros(0, 3)}
    save("dtypes.pth", dtypes, dtypes)
    shared = torch.randn(6, 4)
    views = {"whole": shared, "rows": shared[1:3], "flat": shared.view(-1)[5:11],
             "col": shared[:, 3]}
    save("shared_storage.pth", views, views)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                              torch.nn.Flatten(), torch.nn.Linear(36, 2))
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net(torch.randn(2, 3, 5, 5)).sum().backward()
    opt.step()
    sd = net.state_dict()
    save("checkpoint_dict.pth",
         {"epoch": 3, "best_acc": 0.75, "optimizer": opt.state_dict(), "state_dict": sd,
          "ema_decay": torch.tensor(0.999),
          "args": argparse.Namespace(lr=0.1, name="x"), "tags": ["a", "b"], "blob": b"\x00\x01"},
         sd)
    save("model_key.pth", {"model": sd, "epoch": 9}, sd)
    save("model_state_dict_key.pth", {"model_state_dict": sd, "optimizer_state_dict": {}}, sd)
    save("protocol4.pth", sd, sd, pickle_protocol=4)
    save("protocol5.pth", dtypes, dtypes, pickle_protocol=5)
    save("data_parallel.pth", {"module." + k: v for k, v in sd.items()}, sd)
    param = {"w": torch.nn.Parameter(torch.randn(3, 2)), "b": torch.nn.Parameter(torch.randn(2))}
    save("parameters.pth", param, param)
    many = {f"t{i}": torch.full((2,), float(i)) for i in range(300)}
    save("many_entries.pth", many, many)
    st = {k: v.contiguous() for k, v in dtypes.items() if k != "bool"}
    save_file(st, os.fspath(d / "dtypes.safetensors"), metadata={"who": "python", "n": "1"})
    sorted_safetensors_metadata(d / "dtypes.safetensors")
    cases["dtypes.safetensors"] = describe(st)
    expected["edge_cases"] = cases
    for f in sorted(d.iterdir()):
        if f.suffix != ".json":
            print(f"wrote {f.relative_to(REPO)}")
    write_json(d / "expected.json", expected)


def preprocess(inputs):
    import numpy as np
    import torch
    from PIL import Image
    from torchvision.transforms import functional as F, InterpolationMode
    src = pathlib.Path(inputs) / "preprocess"
    out = REPO / "data/tests/golden/preprocess"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        old.unlink()
    summary = {}
    for c in json.loads((src / "cases.json").read_text()):
        name = c["name"]
        im = Image.open(src / f"{name}.png")
        im.load()
        sha = hashlib.sha256(im.tobytes()).hexdigest()
        im = im.convert("L" if c["color"] == "gray" else "RGB")
        size = (c["size"], c["size"])
        rs = Image.BILINEAR if c["resize"] == "bilinear" else Image.NEAREST
        a = np.asarray(im.resize(size, rs), dtype=np.uint8)
        a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
        (out / f"{name}.pil.u8").write_bytes(np.ascontiguousarray(a).tobytes())
        t = torch.from_numpy(np.asarray(im, dtype=np.float32).copy())
        t = t[None] if t.ndim == 2 else t.permute(2, 0, 1)
        mode = InterpolationMode.BILINEAR if c["resize"] == "bilinear" else InterpolationMode.NEAREST
        o = F.resize(t, list(size), interpolation=mode, antialias=True)
        (out / f"{name}.tv.f32").write_bytes(o.contiguous().numpy().astype("<f4").tobytes())
        summary[name] = dict(c, inputs_sha256=sha)
    print(f"wrote {out.relative_to(REPO)}/*.pil.u8, *.tv.f32")
    write_json(REPO / "data/tests/golden/preprocess.json", summary)


NAMES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def synth(inputs):
    import numpy as np
    import torch
    from PIL import Image
    from sklearn.linear_model import RidgeClassifierCV
    root = pathlib.Path(inputs) / "synth"
    sha = hashlib.sha256()

    def load(split):
        X, y = [], []
        for c, n in enumerate(NAMES):
            d = root / split / n
            for f in sorted(os.listdir(d)):
                a = np.asarray(Image.open(d / f))
                sha.update(a.tobytes())
                X.append(a.astype(np.float32) / 255.0)
                y.append(c)
        return np.stack(X), np.array(y)

    import os
    Xt, yt = load("train")
    Xv, yv = load("val")
    ridge = RidgeClassifierCV(alphas=[0.1, 1, 10, 100, 1000]).fit(Xt.reshape(len(Xt), -1), yt)
    linear = float((ridge.predict(Xv.reshape(len(Xv), -1)) == yv).mean())
    torch.manual_seed(0)
    torch.set_num_threads(2)

    def block(i, o):
        return [torch.nn.Conv2d(i, o, 3, padding=1), torch.nn.BatchNorm2d(o), torch.nn.ReLU(),
                torch.nn.MaxPool2d(2)]
    net = torch.nn.Sequential(*block(1, 16), *block(16, 32), *block(32, 64),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                              torch.nn.Linear(64, 7))
    epochs, lr = 20, 3e-3
    opt = torch.optim.Adam(net.parameters(), lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr,
                                                total_steps=epochs * ((len(Xt) + 31) // 32))
    xt, ytt = torch.from_numpy(Xt[:, None] - 0.5), torch.from_numpy(yt)
    for _ in range(epochs):
        net.train()
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), 32):
            b = perm[i:i + 32]
            x = xt[b]
            x = torch.where((torch.rand(len(b)) < 0.5)[:, None, None, None], x.flip(3), x)
            loss = torch.nn.functional.cross_entropy(net(x), ytt[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    with torch.no_grad():
        pred = net(torch.from_numpy(Xv[:, None] - 0.5)).argmax(1).numpy()
    cnn = float((pred == yv).mean())
    write_json(REPO / "data/tests/golden/synth.json",
               {"linear": linear, "cnn": cnn, "inputs_sha256": sha.hexdigest(),
                "train": int(len(yt)), "val": int(len(yv))})


if __name__ == "__main__":
    if sys.argv[1:2] == ["metrics"] and len(sys.argv) == 3:
        metrics(sys.argv[2])
    elif sys.argv[1:] == ["pickle"]:
        pickles()
    elif sys.argv[1:] == ["pth"]:
        pth()
    elif sys.argv[1:2] == ["preprocess"] and len(sys.argv) == 3:
        preprocess(sys.argv[2])
    elif sys.argv[1:2] == ["synth"] and len(sys.argv) == 3:
        synth(sys.argv[2])
    else:
        sys.exit(__doc__)
