"""Independent reference for the tch lowering: torchvision models run by PyTorch.

Writes into --out: weights.pth (torch.save of the state_dict, the format users have), input.f32,
logits.f32 (eval mode), embedding.f32 (pooled features before the classifier), meta.json; with
--train-step also labels.i64, loss.json and after.pth (state_dict after one SGD step in train mode,
dropout and stochastic depth set to 0 so the step is deterministic); with --precise-bn K the
batches bn{i}.f32 and after_bn.pth (BatchNorm statistics recomputed over them, see its help).
With --counts, prints {arch: {classes: n_params}} as JSON instead.
"""
import argparse
import json
import os

import torch
import torch.nn.functional as F
import torchvision

ARCHS = ["mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0", "resnet18", "resnet50",
         "inception_v3", "vgg_fer"]


class VggFer(torch.nn.Module):
    """vgg_fer as models-spec documents it, from torchvision's VGG parts: vgg13_bn's features
    without the fifth stage, flattened as they are, into torchvision's VGG classifier."""

    def __init__(self, classes, size):
        super().__init__()
        from torchvision.models.vgg import make_layers
        self.features = make_layers([64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M"],
                                    batch_norm=True)
        n = 512 * (size // 16) ** 2
        self.classifier = torch.nn.Sequential(
            torch.nn.Linear(n, 4096), torch.nn.ReLU(True), torch.nn.Dropout(0.5),
            torch.nn.Linear(4096, 4096), torch.nn.ReLU(True), torch.nn.Dropout(0.5),
            torch.nn.Linear(4096, classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def build(arch, classes, size=None):
    if arch == "vgg_fer":
        return VggFer(classes, size or 48)
    kw = dict(aux_logits=False, init_weights=True) if arch == "inception_v3" else {}
    return getattr(torchvision.models, arch)(weights=None, num_classes=classes, **kw)


def first_conv(model):
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Conv2d):
            return name, mod
    raise RuntimeError("no conv")


def set_module(model, dotted, new):
    parent = model
    parts = dotted.split(".")
    for p in parts[:-1]:
        parent = getattr(parent, p)
    setattr(parent, parts[-1], new)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch")
    ap.add_argument("--classes", type=int, default=7)
    ap.add_argument("--in-ch", type=int, default=3)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out")
    ap.add_argument("--train-step", action="store_true")
    ap.add_argument("--counts", action="store_true")
    ap.add_argument("--precise-bn", type=int, default=0,
                    help="write K batches bn{i}.f32 and after_bn.pth: the running statistics as "
                         "PyTorch's cumulative average (momentum=None) over them, in train mode")
    a = ap.parse_args()
    torch.set_num_threads(1)

    if a.counts:
        out = {arch: {str(c): sum(p.numel() for p in build(arch, c).parameters()) for c in (1000, 7)}
               for arch in ARCHS}
        print(json.dumps(out))
        return

    torch.manual_seed(a.seed)
    m = build(a.arch, a.classes, a.size)
    if a.in_ch != 3:
        name, c = first_conv(m)
        set_module(m, name, torch.nn.Conv2d(a.in_ch, c.out_channels, c.kernel_size, c.stride,
                                            c.padding, c.dilation, c.groups, c.bias is not None))
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.normal_(0.0, 0.2)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.normal_(0.0, 0.2)
                mod.num_batches_tracked.fill_(5)
    os.makedirs(a.out, exist_ok=True)
    torch.save(m.state_dict(), os.path.join(a.out, "weights.pth"))
    x = torch.randn(a.batch, a.in_ch, a.size, a.size)
    x.numpy().tofile(os.path.join(a.out, "input.f32"))

    pooled = {}
    head = m.fc if hasattr(m, "fc") else m.classifier
    head.register_forward_pre_hook(lambda mod, inp: pooled.__setitem__("e", inp[0].detach()))
    m.eval()
    with torch.no_grad():
        logits = m(x)
    logits.numpy().tofile(os.path.join(a.out, "logits.f32"))
    pooled["e"].flatten(1).numpy().tofile(os.path.join(a.out, "embedding.f32"))
    meta = {"logits": list(logits.shape), "embedding": list(pooled["e"].flatten(1).shape)}

    if a.train_step:
        for mod in m.modules():
            if isinstance(mod, (torch.nn.Dropout, torchvision.ops.StochasticDepth)):
                mod.p = 0.0
        labels = torch.randint(0, a.classes, (a.batch,))
        labels.numpy().tofile(os.path.join(a.out, "labels.i64"))
        m.train()
        opt = torch.optim.SGD(m.parameters(), lr=0.1)
        loss = F.cross_entropy(m(x), labels)
        loss.backward()
        opt.step()
        meta["loss"] = loss.item()
        torch.save(m.state_dict(), os.path.join(a.out, "after.pth"))
    if a.precise_bn:
        for mod in m.modules():
            if isinstance(mod, (torch.nn.Dropout, torchvision.ops.StochasticDepth)):
                mod.p = 0.0
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.reset_running_stats()
                mod.momentum = None
        m.train()
        with torch.no_grad():
            for i in range(a.precise_bn):
                xb = torch.randn(a.batch, a.in_ch, a.size, a.size) * (1.0 + 0.5 * i) + 0.3 * i
                xb.numpy().tofile(os.path.join(a.out, f"bn{i}.f32"))
                m(xb)
        torch.save(m.state_dict(), os.path.join(a.out, "after_bn.pth"))
    with open(os.path.join(a.out, "meta.json"), "w") as f:
        json.dump(meta, f)


if __name__ == "__main__":
    main()
