#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for `train/tests/sweep_slurm.rs` (and for trying
# `fer-train sweep --slurm --submit` by hand): Debian's slurm-wlm and munge, a minimal
# slurm.conf for this host (its CPUs as `slurmd -C` reports them; no cgroups, no systemd, so it
# also runs in a container), then munged, slurmctld and slurmd, and it waits until `sinfo`
# shows the node idle. Needs root (or sudo) and apt-get the first time.
#
# Idempotent: a cluster that already answers (`sinfo` shows an idle or mixed node) is left
# alone, so a second run takes well under a second. A /etc/slurm/slurm.conf that this script
# did not write is never replaced: the script stops and says so.
#
# `bash scripts/slurm_local.sh stop` stops the three daemons this script started.
set -euo pipefail

log() { printf '[slurm_local] %s\n' "$*" >&2; }
sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
conf=/etc/slurm/slurm.conf
marker="# written by fer-toolkit scripts/slurm_local.sh"
# Where the daemons keep their state, logs and pid files (system locations: the daemons run as
# services of this host, not of the checkout); overridable.
state="${FER_SLURM_STATE:-/var/spool/fer-slurm}"
logs="${FER_SLURM_LOGS:-/var/log/fer-slurm}"
run="${FER_SLURM_RUN:-/run/fer-slurm}"
# munged's socket and pid file live where Debian's munge and its clients look for them.
munge_run=/run/munge

node_ready() {
  command -v sinfo >/dev/null 2>&1 || return 1
  local s
  s="$(timeout 5 sinfo -h -o '%t' 2>/dev/null | head -n1)" || return 1
  case "$s" in idle*|mix*|alloc*) return 0 ;; *) return 1 ;; esac
}

if [ "${1:-}" = stop ]; then
  for p in "$run/slurmd.pid" "$run/slurmctld.pid" "$munge_run/munged.pid"; do
    [ -f "$p" ] && $sudo_cmd kill "$(cat "$p")" 2>/dev/null || true
  done
  log "stopped"
  exit 0
fi

if node_ready; then
  log "Slurm is up: $(sinfo -h -o '%P %D %t %C' | head -n1) (partition nodes state cpus A/I/O/T)"
  exit 0
fi

if ! command -v slurmctld >/dev/null 2>&1 || ! command -v slurmd >/dev/null 2>&1 \
  || ! command -v sbatch >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || { log "Slurm is not installed and there is no apt-get: install slurmctld, slurmd, slurm-client and munge"; exit 1; }
  log "installing slurmctld, slurmd, slurm-client and munge (Debian packages; once)"
  start=$(date +%s)
  pkgs=(slurmctld slurmd slurm-client munge)
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get install -y -q --no-install-recommends "${pkgs[@]}" >/dev/null 2>&1 \
    || { $sudo_cmd apt-get update -q >/dev/null && $sudo_cmd apt-get install -y -q --no-install-recommends "${pkgs[@]}" >/dev/null; }
  log "installed in $(( $(date +%s) - start )) s"
fi

if [ -f "$conf" ] && ! grep -qF "$marker" "$conf"; then
  log "$conf exists and was not written by this script: it is left as it is, and its cluster does not answer (sinfo)"
  exit 1
fi

host="$(hostname -s)"
# `slurmd -C` prints this host's NodeName line (CPUs, boards, sockets, cores, threads, memory).
node_line="$(slurmd -C | head -n1)"
[ -n "$node_line" ] || { log "slurmd -C printed nothing"; exit 1; }
$sudo_cmd mkdir -p /etc/slurm "$state/ctld" "$state/d" "$logs" "$run"
$sudo_cmd tee "$conf" >/dev/null <<EOF
$marker
# A one-node cluster for tests: root runs the daemons, no cgroups, no accounting database.
ClusterName=fer
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/d
SlurmctldPidFile=$run/slurmctld.pid
SlurmdPidFile=$run/slurmd.pid
SlurmctldLogFile=$logs/slurmctld.log
SlurmdLogFile=$logs/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
MinJobAge=300
$(echo "$node_line" | sed -e 's/ UpTime=.*//' -e 's/ RealMemory=[0-9]*//') State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF

# munge: the key comes with the package; the daemon runs as the munge user.
if ! $sudo_cmd pgrep -x munged >/dev/null 2>&1; then
  $sudo_cmd mkdir -p "$munge_run" && $sudo_cmd chown munge:munge "$munge_run"
  [ -f /etc/munge/munge.key ] || { $sudo_cmd mungekey --create 2>/dev/null || $sudo_cmd /usr/sbin/create-munge-key; }
  $sudo_cmd runuser -u munge -- /usr/sbin/munged
fi

# slurmctld and slurmd: restarted from a clean state, so a stale node or job from an earlier
# start (another container's host name) cannot block the new one.
for p in "$run/slurmd.pid" "$run/slurmctld.pid"; do
  [ -f "$p" ] && $sudo_cmd kill "$(cat "$p")" 2>/dev/null || true
done
sleep 0.5
$sudo_cmd slurmctld -c -i
$sudo_cmd slurmd

for _ in $(seq 1 60); do
  if node_ready; then
    log "Slurm is up: $(sinfo -h -o '%P %D %t %C' | head -n1) (partition nodes state cpus A/I/O/T)"
    exit 0
  fi
  sleep 0.5
done
log "the node did not become idle within 30 s: sinfo says '$(sinfo -h -o '%t %E' 2>&1 | head -n1)'; logs in $logs"
tail -n 5 "$logs/slurmctld.log" "$logs/slurmd.log" >&2 || true
exit 1
