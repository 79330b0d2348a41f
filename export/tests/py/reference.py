"""Independent references for the fer-export tests (torchvision, onnx, onnxruntime).

make ARCH SIZE N SEED OUTDIR
    Builds torchvision's ARCH (7 classes, random weights), gives every BatchNorm a random
    affine transform and randomised running statistics (measured, then perturbed), and writes
    OUTDIR/{weights.safetensors, weights.pth, input.npy, logits.npy, embedding.npy}:
    N random inputs [N, 3, SIZE, SIZE], the eval-mode logits and the pooled features
    (the flattened `avgpool` output) of torchvision's forward.

check OUTDIR MODEL.onnx...
    For each ONNX file: onnx.checker (full_check), onnxruntime CPU on OUTDIR/input.npy, and a
    comparison with OUTDIR/logits.npy (and embedding.npy where the model has that output).
    Prints one JSON object keyed by file path, plus `weights_sha256` of
    OUTDIR/weights.safetensors.
"""

import json
import sys
from pathlib import Path

import numpy as np


def make(arch, size, n, seed, out):
    import torch
    import torchvision
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    kwargs = {"weights": None, "num_classes": 7}
    if arch == "inception_v3":
        kwargs.update(aux_logits=False, init_weights=True, transform_input=False)
    model = getattr(torchvision.models, arch)(**kwargs)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        # A random affine transform per BatchNorm, ...
        for m in bns:
            c = m.num_features
            m.weight.copy_(torch.exp(0.25 * torch.randn(c)))
            m.bias.copy_(0.2 * torch.randn(c))
        # ... running statistics of real activations (cumulative average over two batches; only
        # the BatchNorms train, dropout and stochastic depth stay in eval mode) ...
        model.eval()
        for m in bns:
            m.train()
            m.reset_running_stats()
            m.momentum = None
        for _ in range(2):
            model(torch.randn(16, 3, size, size))
        # ... then perturbed per channel. Stronger perturbations compound through the depth
        # into networks whose float32 outputs are ill-conditioned (EfficientNet first).
        for m in bns:
            c = m.num_features
            m.running_mean.add_(0.1 * torch.randn(c) * m.running_var.sqrt())
            m.running_var.mul_(torch.exp(0.1 * torch.randn(c)))
    model.eval()
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, str(out / "weights.safetensors"))
    torch.save(state, str(out / "weights.pth"))
    x = torch.randn(n, 3, size, size)
    feats = []
    model.avgpool.register_forward_hook(lambda _m, _i, o: feats.append(torch.flatten(o, 1)))
    with torch.no_grad():
        logits = model(x)
    np.save(out / "input.npy", x.numpy())
    np.save(out / "logits.npy", logits.numpy())
    np.save(out / "embedding.npy", feats[0].numpy())


def weights_sha256(tensors):
    """docs/onnx-metadata.md's definition of fer.weights_sha256, written independently."""
    import hashlib
    import struct

    h = hashlib.sha256(struct.pack("<Q", len(tensors)))
    for name in sorted(tensors, key=lambda n: n.encode()):
        t = tensors[name]
        f = t.dtype.kind == "f"
        t = t.astype("<f4" if f else "<i8")
        h.update(struct.pack("<Q", len(name.encode())) + name.encode())
        h.update(struct.pack(f"<{1 + t.ndim}Q", t.ndim, *t.shape))
        h.update(b"f32" if f else b"i64")
        h.update(t.tobytes())
    return h.hexdigest()


def check(out, paths):
    import onnx
    import onnxruntime as ort

    x = np.load(out / "input.npy")
    want = {"logits": np.load(out / "logits.npy"), "embedding": np.load(out / "embedding.npy")}
    from safetensors.numpy import load_file

    report = {"weights_sha256": weights_sha256(load_file(str(out / "weights.safetensors")))}
    for path in paths:
        r = {}
        model = onnx.load(path)
        try:
            onnx.checker.check_model(model, full_check=True)
            r["checker"] = "ok"
        except Exception as e:  # the message goes to the Rust assertion
            r["checker"] = f"{type(e).__name__}: {e}"
        r["ir_version"] = model.ir_version
        r["opset"] = [[o.domain, o.version] for o in model.opset_import]
        r["producer_name"] = model.producer_name
        r["graph_name"] = model.graph.name
        r["op_types"] = sorted({n.op_type for n in model.graph.node})
        r["num_batchnorm"] = sum(n.op_type == "BatchNormalization" for n in model.graph.node)
        r["initializers"] = [t.name for t in model.graph.initializer]
        r["inputs"] = [[i.name, [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]]
                       for i in model.graph.input]
        r["outputs"] = [o.name for o in model.graph.output]
        r["metadata"] = {p.key: p.value for p in model.metadata_props}
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        names = [o.name for o in sess.get_outputs()]
        got = dict(zip(names, sess.run(None, {"input": x})))
        for name, value in got.items():
            ref = want[name]
            r[name] = {
                "shape": list(value.shape),
                "max_abs_diff": float(np.max(np.abs(value.astype(np.float64) - ref))),
                "max_abs_ref": float(np.max(np.abs(ref))),
                "top1_agree": float(np.mean(value.argmax(1) == ref.argmax(1))),
            }
        report[path] = r
    print(json.dumps(report))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "make":
        make(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), Path(sys.argv[6]))
    elif cmd == "check":
        check(Path(sys.argv[2]), sys.argv[3:])
    else:
        sys.exit(f"unknown command {cmd!r}")
