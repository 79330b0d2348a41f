# Sourced by the GPU scripts that train several runs at once: starts CUDA MPS (or joins the
# daemon already running) so that their kernels share the GPU instead of time slicing, checks
# that a CUDA context can be made under it, and falls back to time slicing with a line saying
# so. A daemon left by an earlier call on the same warm machine can refuse new clients (round
# 21's second call: its clients had been stopped by `timeout`); it is then quit and started
# afresh once before falling back. NO_MPS=1 skips it.
if [ -z "${NO_MPS:-}" ] && command -v nvidia-cuda-mps-control >/dev/null; then
  export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps-pipe CUDA_MPS_LOG_DIRECTORY=/tmp/mps-log
  mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
  # mps_up: the daemon is running (started here if not) and a CUDA context works under it.
  mps_up() {
    { pgrep -f nvidia-cuda-mps-control >/dev/null || nvidia-cuda-mps-control -d; } &&
      timeout 60 python3 -c "import torch; torch.ones(1, device='cuda').sum().item()" 2>/dev/null
  }
  # mps_quit: stops the daemon (and its server), waiting up to 10 s for them to go.
  mps_quit() {
    echo quit | nvidia-cuda-mps-control 2>/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10; do pgrep -f nvidia-cuda-mps >/dev/null || return 0; sleep 1; done
    pkill -f nvidia-cuda-mps 2>/dev/null; sleep 1
  }
  if mps_up; then
    echo "CUDA MPS on"
  elif pgrep -f nvidia-cuda-mps-control >/dev/null && { mps_quit; mps_up; }; then
    echo "CUDA MPS on (the daemon already running refused a client; started afresh)"
  else
    mps_quit
    echo "CUDA MPS could not start; runs share the GPU by time slicing"
    unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
  fi
fi
