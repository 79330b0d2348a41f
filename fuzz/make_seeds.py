"""Writes the committed seed corpus of the fuzz targets (fuzz/corpus/<target>/), small valid
files of each kind, made here rather than copied from anywhere. Run from the repository root
with the project's venv: `.venv/bin/python fuzz/make_seeds.py`.
"""

import io
import json
import os
import struct

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper
from PIL import Image

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def face(size, seed=0):
    r = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size]
    g = 128 + 60 * np.sin(x / 3.0) * np.cos(y / 5.0) + r.normal(0, 8, (size, size))
    return np.clip(g, 0, 255).astype(np.uint8)


def encode(img, fmt, **kw):
    b = io.BytesIO()
    img.save(b, format=fmt, **kw)
    return b.getvalue()


def safetensors(tensors, meta):
    hdr, blobs, off = {"__metadata__": meta}, [], 0
    for k, v in tensors.items():
        b = v.contiguous().numpy().tobytes()
        dt = {torch.float32: "F32", torch.int64: "I64"}[v.dtype]
        hdr[k] = {"dtype": dt, "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(hdr).encode()
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def avi(frames, fps=10):
    """A minimal MJPEG AVI: RIFF AVI, hdrl (avih, one strl with strh/strf), movi, idx1."""
    w, h = 16, 16
    chunk = lambda tag, body: tag + struct.pack("<I", len(body)) + body + (b"\0" if len(body) % 2 else b"")
    lst = lambda kind, body: chunk(b"LIST", kind + body)
    avih = struct.pack("<14I", 1000000 // fps, 0, 0, 0x10, len(frames), 0, 1, 0, w, h, 0, 0, 0, 0)
    strh = b"vids" + b"MJPG" + struct.pack("<IHHIIIIIIiI4h", 0, 0, 0, 0, 1, fps, 0, len(frames), 0, -1, 0, 0, 0, w, h)
    strf = struct.pack("<IiiHH4sIiiII", 40, w, h, 1, 24, b"MJPG", w * h * 3, 0, 0, 0, 0)
    hdrl = lst(b"hdrl", chunk(b"avih", avih) + lst(b"strl", chunk(b"strh", strh) + chunk(b"strf", strf)))
    movi_body, idx, pos = b"", b"", 4
    for f in frames:
        c = chunk(b"00dc", f)
        idx += b"00dc" + struct.pack("<III", 0x10, pos, len(f))
        movi_body += c
        pos += len(c)
    body = b"AVI " + hdrl + lst(b"movi", movi_body) + chunk(b"idx1", idx)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def main():
    # Images (the first byte picks the extension in the `image` target).
    g = Image.fromarray(face(48))
    rgb = Image.fromarray(np.stack([face(24, s) for s in range(3)], -1))
    put("image", "png_gray", b"\x00" + encode(g, "PNG"))
    put("image", "jpg_gray", b"\x01" + encode(g, "JPEG", quality=80))
    put("image", "jpg_rgb_progressive", b"\x81" + encode(rgb, "JPEG", progressive=True))
    put("image", "bmp_rgb", b"\x02" + encode(rgb, "BMP"))
    put("image", "webp_rgb", b"\x03" + encode(rgb, "WEBP", lossless=True))
    put("image", "tif_gray_lzw", b"\x04" + encode(g, "TIFF", compression="tiff_lzw"))
    put("image", "tif_rgb_packbits", b"\x84" + encode(rgb, "TIFF", compression="packbits"))
    put("image", "pgm_gray", b"\x05" + encode(g, "PPM"))
    put("image", "png_rgba16", b"\x00" + encode(Image.fromarray(face(8).astype(np.uint16) * 200), "PNG"))

    # Video: a raw MJPEG stream and the same frames in an AVI.
    frames = [encode(Image.fromarray(face(16, s)), "JPEG", quality=70) for s in range(3)]
    put("video", "raw.mjpeg", b"".join(frames))
    put("video", "mjpeg.avi", avi(frames))

    # MP4: H.264 (libx264 from imageio-ffmpeg), 4 frames of 32 x 24, with and without B-frames,
    # the index (moov) first and last.
    import subprocess, tempfile
    import imageio_ffmpeg
    ff = imageio_ffmpeg.get_ffmpeg_exe()
    raw = np.stack([np.stack([face(32, s)[:24]] * 3, -1) for s in range(4)]).tobytes()
    for name, extra in [("ip.mp4", ["-bf", "0"]), ("b_faststart.mp4", ["-bf", "2", "-movflags", "+faststart"])]:
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, name)
            subprocess.run([ff, "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "32x24", "-r", "10",
                            "-i", "-", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "4", *extra, out],
                           input=raw, check=True)
            put("mp4", name, open(out, "rb").read())

    # Weights: torch.save zip (.pth), safetensors, and one of our checkpoints' shape.
    sd = {"conv.weight": torch.randn(2, 1, 3, 3), "bn.num_batches_tracked": torch.tensor(3), "fc.bias": torch.zeros(7)}
    b = io.BytesIO()
    torch.save(sd, b)
    pth = b.getvalue()
    put("weights", "state_dict.pth", pth)
    put("weights", "plain.safetensors", safetensors(sd, {}))
    meta = {"fer.arch": "mobilenet_v3_small", "fer.num_classes": "7", "fer.input_size": "64"}
    put("weights", "checkpoint.safetensors", safetensors({"classifier.3.bias": torch.zeros(7)}, meta))

    # Pickle: the data.pkl inside the .pth zip, and a protocol-2 pickle of plain values.
    import zipfile
    with zipfile.ZipFile(io.BytesIO(pth)) as z:
        name = next(n for n in z.namelist() if n.endswith("data.pkl"))
        put("pickle", "torch_data.pkl", z.read(name))
    import pickle
    put("pickle", "plain.pkl", pickle.dumps({"a": [1, 2.5, "x", (None, True)], "b": b"\x00\x01"}, protocol=2))

    # ONNX: a tiny classifier (Flatten + Gemm) with the metadata fer-export writes.
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 4, 4])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 7])
    w = helper.make_tensor("w", TensorProto.FLOAT, [16, 7], np.random.default_rng(0).normal(size=112).astype(np.float32))
    nodes = [helper.make_node("Flatten", ["input"], ["f"]), helper.make_node("Gemm", ["f", "w"], ["logits"])]
    m = helper.make_model(helper.make_graph(nodes, "fer", [x], [y], [w]), opset_imports=[helper.make_opsetid("", 17)])
    props = {
        "fer.schema_version": "1", "fer.labels": json.dumps(["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"]),
        "fer.input_size": "4", "fer.in_channels": "1", "fer.color": "gray", "fer.resize": "bilinear",
        "fer.mean": "[0.449]", "fer.std": "[0.226]", "fer.temperature": "0.8", "fer.outputs": '["logits"]',
    }
    helper.set_model_props(m, props)
    put("onnx", "tiny_fer.onnx", m.SerializeToString())
    helper.set_model_props(m, {})
    put("onnx", "tiny_plain.onnx", m.SerializeToString())

    # Datasets (the first byte picks the reader in the `datasets` target).
    px = " ".join(str(v) for v in face(48).ravel())
    fer = f"emotion,pixels,Usage\n3,{px},Training\n0,{px},PublicTest\n6,{px},PrivateTest\n"
    put("datasets", "fer2013_csv", b"\x00" + fer.encode())
    new = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n" \
          "Training,fer0000000.png,4,0,0,1,3,2,0,0,0,0\nPublicTest,fer0000001.png,10,0,0,0,0,0,0,0,0,0\n"
    put("datasets", "ferplus", b"\x01" + new.encode() + b"\n===\n" + fer.encode())
    put("datasets", "rafdb", b"\x02" + b"train_00001.jpg 5\ntest_0001.jpg 1\ntrain_00002.jpg 7\n")
    aff = "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal\n" \
          "689/737db2483489148d783ef278f43f486c0a97e140fc4b6b61b84363ca.jpg,134,134,899,899,181.64;530.91,1,0.785714,-0.055556\n"
    put("datasets", "affectnet_csv", b"\x03" + aff.encode())

    # Configs: shipped configs as they are, and one with overrides after `---`.
    here = os.path.dirname(ROOT)
    for name in ["exp3_baseline", "exp5_hybrid_kd_ensemble", "exp2_response_kd_two_phase"]:
        text = open(os.path.join(here, "..", "configs", "fer2013", name + ".toml"), "rb").read()
        put("config", name, text)
    text = open(os.path.join(here, "..", "configs", "fer2013", "exp3_baseline.toml"), "rb").read()
    put("config", "with_sets", text + b"\n---\noptim.lr=0.05\nstages.0.epochs=3\naugment.mixup_alpha=0.2\n")


if __name__ == "__main__":
    main()
