#!/usr/bin/env bash
# A throw-away one-node SLURM cluster on this machine, for the rocksr SLURM tests.
#
#   tests/slurm/cluster.sh start    install (if missing), configure, start, wait for the node
#   tests/slurm/cluster.sh stop     stop exactly the daemons that `start` started (recorded PIDs)
#   tests/slurm/cluster.sh status   print daemons and `sinfo`; exit 0 when the node answers
#
# Needs root on Debian bookworm (SLURM 22.05, munge 0.5.15); no systemd needed: the daemons are
# started directly. Idempotent: `start` on a running cluster with the same configuration only
# checks it; `stop` on a stopped one does nothing.
#
# Design choices (see docs/slurm.md):
# - No accounting (no slurmdbd/MariaDB): fewer packages and daemons, ~10 s faster start, no
#   account validation. Consequence: `sacct` does not work here, so a Snakemake profile used
#   against this cluster MUST set `slurm-status-command: squeue` (profiles/slurm-test does);
#   with `sacct` the plugin waits forever after its first job. MinJobAge=300 keeps finished jobs
#   visible to `squeue --states=all` long enough, and jobcomp/filetxt writes one line per
#   finished job to $STATE_DIR/jobcomp.log (the tests read it to prove jobs went through SLURM).
# - Two fake GPUs through GRES (two existing device files) so that `--gpus=1` is accepted and
#   jobs get CUDA_VISIBLE_DEVICES.
#
# Environment knobs:
#   ROCKSR_SLURM_STATE     state dir (default /var/lib/rocksr-slurm): pids, logs, spool, jobcomp
#   ROCKSR_SLURM_TIMEOUT   seconds to wait for the node to become idle (default 60)
#   ROCKSR_SLURM_FORCE=1   overwrite an /etc/slurm/slurm.conf this script did not write
set -euo pipefail

STATE_DIR=${ROCKSR_SLURM_STATE:-/var/lib/rocksr-slurm}
TIMEOUT=${ROCKSR_SLURM_TIMEOUT:-60}
CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
GRES_CONF=$CONF_DIR/gres.conf
MARKER="# written by rocksr tests/slurm/cluster.sh"
PACKAGES=(munge slurmctld slurmd slurm-client)
PARTITION=debug

log() { printf '[cluster.sh] %s\n' "$*"; }
die() { printf '[cluster.sh] ERROR: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
phase_start=0
phase() { phase_start=$(now); log "$1 ..."; }
elapsed() { awk -v a="$(now)" -v b="$1" 'BEGIN { printf "%.1f", a - b }'; }
phase_done() { log "$(printf '%-28s %6s s' "$1" "$(elapsed "$phase_start")")"; }

need_root() { [[ $(id -u) -eq 0 ]] || die "must run as root"; }

# ---------------------------------------------------------------- pid bookkeeping
# $STATE_DIR/pids/<name> holds "<pid> <comm>" for each daemon this script started.
record_pid() {  # name pidfile comm
  local name=$1 pidfile=$2 comm=$3 pid="" i
  for i in $(seq 1 100); do
    if [[ -s $pidfile ]]; then pid=$(tr -dc '0-9' <"$pidfile"); fi
    if [[ -n $pid ]] && [[ -d /proc/$pid ]]; then break; fi
    pid=""; sleep 0.1
  done
  [[ -n $pid ]] || return 1
  mkdir -p "$STATE_DIR/pids"
  echo "$pid $comm" >"$STATE_DIR/pids/$name"
}

recorded_alive() {  # name -> prints pid if the recorded process is alive and is still that daemon
  local f=$STATE_DIR/pids/$1 pid comm
  [[ -f $f ]] || return 1
  read -r pid comm <"$f" || return 1
  [[ -n $pid && -r /proc/$pid/comm ]] || return 1
  [[ $(cat "/proc/$pid/comm") == "$comm" ]] || return 1
  echo "$pid"
}

stop_one() {  # name
  local name=$1 pid i
  if pid=$(recorded_alive "$name"); then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do [[ -d /proc/$pid ]] || break; sleep 0.1; done
    if [[ -d /proc/$pid ]]; then log "$name ($pid) ignored SIGTERM, sending SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; fi
    log "stopped $name (pid $pid)"
  fi
  rm -f "$STATE_DIR/pids/$name"
}

# ---------------------------------------------------------------- install
install_packages() {
  local missing=0 b
  for b in munged mungekey slurmctld slurmd sinfo sbatch squeue scontrol; do
    command -v "$b" >/dev/null 2>&1 || missing=1
  done
  if [[ $missing -eq 0 ]]; then log "packages already installed"; return 0; fi
  export DEBIAN_FRONTEND=noninteractive
  # Keep package scripts from starting daemons we would not know about.
  local made_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; made_policy=1
  fi
  # apt-get update only when the package lists do not know the packages, or install fails
  # (stale lists on a CI image).
  local policy; policy=$(apt-cache policy slurmctld 2>/dev/null || true)
  if ! grep -q 'Candidate: [0-9]' <<<"$policy"; then
    log "apt-get update (package lists missing)"; apt-get update -qq
  fi
  if ! apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >"$STATE_DIR/apt.log" 2>&1; then
    log "install failed, retrying after apt-get update"; apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >"$STATE_DIR/apt.log" 2>&1 \
      || { tail -20 "$STATE_DIR/apt.log" >&2; [[ $made_policy -eq 1 ]] && rm -f /usr/sbin/policy-rc.d; die "apt-get install failed"; }
  fi
  [[ $made_policy -eq 1 ]] && rm -f /usr/sbin/policy-rc.d
  log "installed: $(dpkg-query -W -f='${Package} ${Version}, ' "${PACKAGES[@]}")"
}

# ---------------------------------------------------------------- configuration
pick_gpu_files() {  # prints two distinct existing character devices
  local c found=()
  for c in /dev/tty0 /dev/tty1 /dev/tty2 /dev/tty3 /dev/tty4 /dev/tty5 /dev/tty6 /dev/tty7 /dev/tty8 /dev/tty9; do
    [[ -c $c ]] && found+=("$c")
    [[ ${#found[@]} -eq 2 ]] && break
  done
  [[ ${#found[@]} -eq 2 ]] || die "need two existing /dev/ttyN device files for the fake GPUs, found: ${found[*]:-none}"
  echo "${found[@]}"
}

render_config() {  # writes $STATE_DIR/slurm.conf.new and gres.conf.new
  local node cpus mem_kb real_mem gpu0 gpu1
  node=$(hostname -s)
  cpus=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)  # nproc honours OMP_NUM_THREADS (set to 1 by the tests)
  mem_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
  real_mem=$(( mem_kb / 1024 - 1024 ))
  (( real_mem > 512 )) || die "too little memory for a SLURM node: ${mem_kb} kB"
  local gpus; gpus=$(pick_gpu_files)   # dies (and so does this script) if there are not two
  read -r gpu0 gpu1 <<<"$gpus"
  cat >"$STATE_DIR/slurm.conf.new" <<EOF
$MARKER (do not edit: regenerated on start)
ClusterName=rocksr
SlurmctldHost=$node
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
ReturnToService=2
MinJobAge=300
SchedulerType=sched/backfill
StateSaveLocation=$STATE_DIR/ctld
SlurmdSpoolDir=$STATE_DIR/slurmd
SlurmctldPidFile=$STATE_DIR/run/slurmctld.pid
SlurmdPidFile=$STATE_DIR/run/slurmd.pid
SlurmctldLogFile=$STATE_DIR/log/slurmctld.log
SlurmdLogFile=$STATE_DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE_DIR/jobcomp.log
GresTypes=gpu
NodeName=$node CPUs=$cpus RealMemory=$real_mem Gres=gpu:2 State=UNKNOWN
PartitionName=$PARTITION Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
  cat >"$STATE_DIR/gres.conf.new" <<EOF
$MARKER
AutoDetect=off
NodeName=$node Name=gpu File=$gpu0
NodeName=$node Name=gpu File=$gpu1
EOF
}

config_is_current() {
  cmp -s "$STATE_DIR/slurm.conf.new" "$CONF" && cmp -s "$STATE_DIR/gres.conf.new" "$GRES_CONF"
}

install_config() {
  mkdir -p "$CONF_DIR"
  if [[ -f $CONF ]] && ! head -1 "$CONF" | grep -qF "$MARKER" && [[ ${ROCKSR_SLURM_FORCE:-0} != 1 ]]; then
    die "$CONF exists and was not written by this script; set ROCKSR_SLURM_FORCE=1 to overwrite"
  fi
  mv "$STATE_DIR/slurm.conf.new" "$CONF"
  mv "$STATE_DIR/gres.conf.new" "$GRES_CONF"
  chmod 644 "$CONF" "$GRES_CONF"
}

ensure_hostname_resolves() {
  local node; node=$(hostname -s)
  if ! getent hosts "$node" >/dev/null; then
    echo "127.0.0.1 $node" >>/etc/hosts; log "added '$node' to /etc/hosts"
  fi
}

# ---------------------------------------------------------------- daemons
munge_works() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
  if munge_works; then
    if recorded_alive munged >/dev/null; then log "munged already running (ours)"; else log "munged already running (not ours; left alone)"; fi
    return 0
  fi
  stop_one munged
  if [[ ! -s /etc/munge/munge.key ]]; then
    mkdir -p /etc/munge
    mungekey --create --keyfile=/etc/munge/munge.key --force >/dev/null
  fi
  chown munge:munge /etc/munge /etc/munge/munge.key; chmod 0700 /etc/munge; chmod 0400 /etc/munge/munge.key
  mkdir -p /run/munge /var/lib/munge /var/log/munge
  chown munge:munge /run/munge /var/lib/munge /var/log/munge; chmod 0755 /run/munge
  rm -f /run/munge/munged.pid
  runuser -u munge -- munged --pid-file=/run/munge/munged.pid
  record_pid munged /run/munge/munged.pid munged || die "munged did not start"
  local i; for i in $(seq 1 50); do munge_works && return 0; sleep 0.1; done
  die "munged started but munge/unmunge fails"
}

start_daemon() {  # name binary pidfile
  local name=$1 bin=$2 pidfile=$3 extra=${4:-}
  rm -f "$pidfile"
  # shellcheck disable=SC2086
  "$bin" $extra || { tail -30 "$STATE_DIR/log/$name.log" >&2 || true; die "$name failed to start"; }
  record_pid "$name" "$pidfile" "$name" || { tail -30 "$STATE_DIR/log/$name.log" >&2 || true; die "$name exited right after start"; }
}

node_state() { sinfo -h -N -n "$(hostname -s)" -o '%T' 2>/dev/null | head -1; }

wait_idle() {
  local deadline state="" node; node=$(hostname -s)
  deadline=$(( $(date +%s) + TIMEOUT ))
  while (( $(date +%s) < deadline )); do
    state=$(node_state || true)
    case $state in
      idle|mixed|allocated) return 0 ;;
      drain*|down*|*fail*)
        scontrol update NodeName="$node" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    for d in slurmctld slurmd; do
      recorded_alive $d >/dev/null || { tail -30 "$STATE_DIR/log/$d.log" >&2 || true; die "$d died (node state: ${state:-?})"; }
    done
    sleep 0.5
  done
  log "slurmctld log:"; tail -20 "$STATE_DIR/log/slurmctld.log" >&2 || true
  log "slurmd log:"; tail -20 "$STATE_DIR/log/slurmd.log" >&2 || true
  scontrol show node "$node" >&2 || true
  die "node $node not idle after ${TIMEOUT}s (state: ${state:-no answer})"
}

# ---------------------------------------------------------------- commands
cmd_start() {
  need_root
  local t0; t0=$(now)
  mkdir -p "$STATE_DIR"/{pids,run,log,ctld,slurmd}

  phase "install"; install_packages; phase_done "install packages"

  phase "configure"
  ensure_hostname_resolves
  render_config
  local running=0
  if recorded_alive slurmctld >/dev/null && recorded_alive slurmd >/dev/null; then running=1; fi
  if [[ $running -eq 1 ]] && config_is_current && [[ $(node_state) =~ ^(idle|mixed|allocated)$ ]]; then
    rm -f "$STATE_DIR"/{slurm,gres}.conf.new
    phase_done "configure"
    log "already running with the same configuration (node $(node_state))"
    log "$(printf '%-28s %6s s' total "$(elapsed "$t0")")"
    return 0
  fi
  # Something is off (config changed, one daemon gone): restart what we own.
  stop_one slurmd; stop_one slurmctld
  install_config
  phase_done "configure"

  phase "munged"; start_munge; phase_done "start munged"
  # Job ids may restart after -c: keep the per-job completion log of this start only.
  [[ -f $STATE_DIR/jobcomp.log ]] && mv -f "$STATE_DIR/jobcomp.log" "$STATE_DIR/jobcomp.log.1"
  # -c: start from a clean controller state (no stale jobs or node states from an earlier run).
  phase "slurmctld"; start_daemon slurmctld slurmctld "$STATE_DIR/run/slurmctld.pid" "-c"; phase_done "start slurmctld"
  phase "slurmd"; start_daemon slurmd slurmd "$STATE_DIR/run/slurmd.pid"; phase_done "start slurmd"
  phase "wait for node idle (timeout ${TIMEOUT}s)"; wait_idle; phase_done "node idle"
  sinfo
  log "$(printf '%-28s %6s s' total "$(elapsed "$t0")")"
}

cmd_stop() {
  need_root
  stop_one slurmd
  stop_one slurmctld
  stop_one munged
  log "stopped (only daemons recorded in $STATE_DIR/pids)"
}

cmd_status() {
  local d pid up=0
  for d in munged slurmctld slurmd; do
    if pid=$(recorded_alive $d); then log "$d running (pid $pid)"; else log "$d not running (or not started by this script)"; fi
  done
  # Ask the controller only if one runs (sinfo retries for ~10 s when none answers).
  if command -v sinfo >/dev/null && { recorded_alive slurmctld >/dev/null || pgrep -x slurmctld >/dev/null 2>&1; }; then
    if timeout 15 sinfo >/dev/null 2>&1; then sinfo; up=1; fi
  fi
  [[ $up -eq 1 ]]
}

case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
