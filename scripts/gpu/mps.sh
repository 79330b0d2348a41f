# Sourced by the GPU scripts that train several runs at once: starts CUDA MPS (or joins the
# daemon already running) so that their kernels share the GPU instead of time slicing, checks
# that a CUDA context can be made under it, and falls back to time slicing with a line saying
# so. NO_MPS=1 skips it.
if [ -z "${NO_MPS:-}" ] && command -v nvidia-cuda-mps-control >/dev/null; then
  export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps-pipe CUDA_MPS_LOG_DIRECTORY=/tmp/mps-log
  mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
  if { pgrep -f nvidia-cuda-mps-control >/dev/null || nvidia-cuda-mps-control -d; } &&
     timeout 60 python3 -c "import torch; torch.ones(1, device='cuda').sum().item()" 2>/dev/null; then
    echo "CUDA MPS on"
  else
    echo quit | nvidia-cuda-mps-control 2>/dev/null
    echo "CUDA MPS could not start; runs share the GPU by time slicing"
    unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
  fi
fi
