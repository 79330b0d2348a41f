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
      torchmetrics scikit-learn scikit-image pillow)

log() { printf '[setup] %s\n' "$*" >&2; }

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
PY
if [ "$need_install" = 1 ]; then
  log "installing ${pkgs[*]} (first time: a few minutes, about 5 GB)"
  start=$(date +%s)
  "$py" -m pip install -q --disable-pip-version-check "${pkgs[@]}"
  log "Python packages installed in $(( $(date +%s) - start )) s"
fi

site="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
mkdir -p .deps
ln -sfn "$site/torch" .deps/libtorch
ln -sfn "$site/onnxruntime/capi" .deps/onnxruntime
ort_lib="$(ls "$site"/onnxruntime/capi/libonnxruntime.so.* 2>/dev/null | head -n1)"
[ -n "$ort_lib" ] || { log "libonnxruntime.so.* not found under $site/onnxruntime/capi"; exit 1; }
ln -sfn "$ort_lib" .deps/libonnxruntime.so
log "libtorch: .deps/libtorch -> $site/torch"
log "onnxruntime: .deps/libonnxruntime.so -> $ort_lib"

# Plot text (fer_metrics::plot, `fer-infer eval/report`) is drawn with DejaVu Sans, loaded at
# run time; FER_FONT=/path/to/font.ttf overrides it.
dejavu=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
if [ ! -f "$dejavu" ] && [ -z "${FER_FONT:-}" ]; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
    log "installing fonts-dejavu-core (plot text)"
    $sudo_cmd apt-get install -y -q fonts-dejavu-core >/dev/null 2>&1 \
      || { $sudo_cmd apt-get update -q && $sudo_cmd apt-get install -y -q fonts-dejavu-core; }
  else
    log "no $dejavu and no apt-get: install DejaVu Sans or set FER_FONT to a .ttf file"
  fi
fi
