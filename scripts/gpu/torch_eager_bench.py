"""PyTorch eager reference for `fer-train bench`: the same training step with torchvision models.

Same inputs (random, batch on the GPU), same loss (cross-entropy with label smoothing 0.1, or
exp5's CE + Hinton KD (T=4) + RKD distance (weight 25) with a frozen eval-mode teacher fed at its
own size), same optimiser (SGD, Nesterov, momentum 0.9, weight decay 5e-4; PyTorch's default
implementation on CUDA, foreach, unless --fused), same precision (fp32 or autocast bf16/fp16),
channels-last when asked. Prints one JSON line per configuration, in fer-train bench's format.

  python scripts/gpu/torch_eager_bench.py --arch mobilenet_v3_small --size 112 --precision bf16
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F
import torchvision


def build(arch, classes=7):
    kw = dict(aux_logits=False, init_weights=True) if arch == "inception_v3" else {}
    return getattr(torchvision.models, arch)(weights=None, num_classes=classes, **kw)


def embedding_of(model):
    """Registers a hook that keeps the classifier's input (the pooled embedding)."""
    store = {}
    head = model.fc if hasattr(model, "fc") else model.classifier
    head.register_forward_pre_hook(lambda m, inp: store.__setitem__("e", inp[0].flatten(1)))
    return store


def rkd_distance(s, t):
    def norm_dist(e):
        d = torch.cdist(e, e)
        mask = ~torch.eye(len(e), dtype=torch.bool, device=e.device)
        return d / d[mask].mean().clamp_min(1e-12)
    with torch.no_grad():
        td = norm_dist(t.float())
    return F.smooth_l1_loss(norm_dist(s.float()), td)


def kd(s, t, temp):
    return F.kl_div(F.log_softmax(s.float() / temp, 1), F.softmax(t.float() / temp, 1),
                    reduction="batchmean") * temp * temp


def run(a, arch, size, precision):
    dev = torch.device("cuda")
    torch.manual_seed(0)
    student = build(arch).to(dev).train()
    s_emb = embedding_of(student)
    teacher, t_emb, t_size = None, None, None
    if a.teacher:
        t_arch, t_size = a.teacher.split("@")
        t_size = int(t_size)
        teacher = build(t_arch).to(dev).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        t_emb = embedding_of(teacher)
    mf = torch.channels_last if a.channels_last else torch.contiguous_format
    student = student.to(memory_format=mf)
    if teacher is not None:
        teacher = teacher.to(memory_format=mf)
    opt = torch.optim.SGD(student.parameters(), lr=0.01, momentum=0.9, nesterov=True,
                          weight_decay=5e-4, fused=True if a.fused else None)
    x = torch.randn(a.batch, 3, size, size, device=dev).to(memory_format=mf)
    y = torch.randint(0, 7, (a.batch,), device=dev)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "fp16")

    def step():
        with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = student(x)
            if teacher is None:
                loss = F.cross_entropy(logits, y, label_smoothing=0.1)
            else:
                with torch.no_grad():
                    xt = x if t_size == size else F.interpolate(
                        x, size=(t_size, t_size), mode="bilinear", align_corners=False)
                    t_logits = teacher(xt)
                loss = (0.5 * F.cross_entropy(logits, y, label_smoothing=0.1)
                        + 0.5 * kd(logits, t_logits, 4.0)
                        + 25.0 * rkd_distance(s_emb["e"], t_emb["e"]))
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        return loss

    for _ in range(a.warmup):
        loss = step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    torch.cuda.synchronize()
    secs = time.perf_counter() - t0
    return {
        "model": f"{arch}@{size}",
        "step": "ce" if teacher is None else f"kd({a.teacher})",
        "precision": precision,
        "channels_last": a.channels_last,
        "batch": a.batch,
        "img_per_s": a.steps * a.batch / secs,
        "ms_per_step": secs * 1e3 / a.steps,
        "final_loss": loss.item(),
        "runtime": f"pytorch {torch.__version__} eager" + (" fused-sgd" if a.fused else ""),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", required=True, help="comma-separated torchvision names")
    ap.add_argument("--size", default="112", help="comma-separated input sides")
    ap.add_argument("--precision", default="fp32", help="comma-separated: fp32, bf16, fp16")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--teacher", help="ARCH@SIZE: the exp5 KD step with a frozen teacher")
    ap.add_argument("--fused", action="store_true", help="torch.optim.SGD(fused=True)")
    ap.add_argument("--warmup", type=int, default=15)
    ap.add_argument("--steps", type=int, default=50)
    a = ap.parse_args()
    torch.backends.cudnn.benchmark = True
    for arch in a.arch.split(","):
        for size in a.size.split(","):
            for p in a.precision.split(","):
                print(json.dumps(run(a, arch, int(size), p)), flush=True)


if __name__ == "__main__":
    main()
