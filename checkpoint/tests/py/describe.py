"""Exact descriptions of torch tensors for the checkpoint tests: the prelude of their live Python
snippets (checkpoint/tests/common/mod.rs) and of scripts/golden/make_golden.py's `.pth` goldens."""
import json, sys
import torch
def bits(t):
    t = t.detach()
    if t.is_floating_point():
        return {"shape": list(t.shape), "f32": t.float().contiguous().view(torch.int32).flatten().tolist()}
    return {"shape": list(t.shape), "i64": t.long().flatten().tolist()}
def describe(sd):
    return {k: bits(v) for k, v in sd.items()}
