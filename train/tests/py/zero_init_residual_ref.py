"""Independent reference for `model.zero_init_residual`: which batch norms end a residual
branch in torchvision's own modules. Prints {arch: [bn names]} as JSON.

ResNets: torchvision's `zero_init_residual=True`, read back as the batch norms whose weight is
all zero. MobileNetV3 and EfficientNet-B0 (no such option in torchvision): the last batch norm
of `block` in every InvertedResidual / MBConv whose `use_res_connect` is set.
"""
import json

import torch
import torchvision.models as tvm

out = {}
for arch in ["resnet18", "resnet50"]:
    m = getattr(tvm, arch)(num_classes=7, zero_init_residual=True)
    out[arch] = sorted(n for n, mod in m.named_modules()
                       if isinstance(mod, torch.nn.BatchNorm2d) and not mod.weight.any())
for arch in ["mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0"]:
    m = getattr(tvm, arch)(num_classes=7)
    names = []
    for n, mod in m.named_modules():
        if getattr(mod, "use_res_connect", False):
            bns = [f"{n}.block.{bn}" for bn, sub in mod.block.named_modules()
                   if isinstance(sub, torch.nn.BatchNorm2d)]
            names.append(bns[-1])
    out[arch] = sorted(names)
print(json.dumps(out))
