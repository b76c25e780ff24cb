#!/usr/bin/env bash
# A single-node SLURM cluster on localhost for CI (tests/test_slurm.py), on Debian 12 as root, without systemd.
#
#   bash .ci/slurm.sh up     install slurmctld, slurmd, slurm-client, munge if missing; write /etc/slurm/slurm.conf;
#                            start munged, slurmctld, slurmd by hand; wait until `sinfo` shows the node idle
#   bash .ci/slurm.sh down   cancel leftover jobs, stop the three daemons by their PID files
#   bash .ci/slurm.sh status what runs, and what sinfo says
#
# Both are idempotent: `up` on a running cluster only checks it; `down` with nothing running does nothing.
# No accounting (no slurmdbd): `sacct` cannot report jobs, so the Snakemake SLURM executor must query job states
# with `squeue` (profiles/slurm sets it), which sees finished jobs for MinJobAge seconds (300 here).
# Logs: /var/log/slurm/{slurmctld,slurmd}.log and /var/log/munge/munged.log (printed when `up` fails).
set -euo pipefail

CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
NODE=localhost
WAIT_S=${SLURM_UP_WAIT_S:-60}
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
MUNGE_PID=/run/munge/munged.pid
PACKAGES=(slurmctld slurmd slurm-client munge)

say() { echo "[slurm.sh] $*" >&2; }
die() {
  say "ERROR: $*"
  for f in /var/log/munge/munged.log /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log; do
    # (slurmd's "can not load PMIx library" errors are harmless: no MPI here)
    [ -s "$f" ] && { say "---- last lines of $f"; grep -v -i pmix "$f" | tail -n 20 >&2; }
  done
  exit 1
}

# pid from a PID file if that process is alive, else nothing
alive_pid() {
  local pid
  [ -s "$1" ] || return 1
  pid=$(tr -dc '0-9' <"$1")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

install_packages() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sinfo >/dev/null \
    && command -v munged >/dev/null; then
    return
  fi
  [ "$(id -u)" -eq 0 ] || die "packages ${PACKAGES[*]} are missing and installing them needs root"
  command -v apt-get >/dev/null || die "packages ${PACKAGES[*]} are missing and there is no apt-get"
  say "installing ${PACKAGES[*]} (apt-get, --no-install-recommends)"
  # No init system: keep the packages' maintainer scripts from starting services (we start them below).
  local policy=/usr/sbin/policy-rc.d added_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && added_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  local rc=0 log
  log=$(mktemp)
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 "${PACKAGES[@]}"; } \
    >"$log" 2>&1 || rc=$?
  if [ "$added_policy" -eq 1 ]; then rm -f "$policy"; fi
  if [ "$rc" -ne 0 ]; then
    tail -n 30 "$log" >&2
    rm -f "$log"
    die "apt-get install ${PACKAGES[*]} failed (exit $rc)"
  fi
  rm -f "$log"
}

write_config() {
  local node_line
  # The machine's CPUs, sockets, cores, threads and memory as slurmd sees them (first line of `slurmd -C`).
  node_line=$(slurmd -C 2>/dev/null | head -n 1) || true
  [[ "$node_line" == NodeName=* ]] || die "slurmd -C did not describe this machine: '$node_line'"
  node_line="NodeName=$NODE ${node_line#NodeName=* }"
  mkdir -p "$CONF_DIR" /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm
  cat >"$CONF.tmp" <<EOF
# Written by .ci/slurm.sh: a single-node test cluster on localhost (no accounting, no cgroups).
ClusterName=ci
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# squeue (the executor's status command here) sees a finished job for MinJobAge seconds: keep it >= 3x the
# executor's first status check (--slurm-init-seconds-before-status-checks).
MinJobAge=300
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=60
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
$node_line State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
  mv "$CONF.tmp" "$CONF"
}

start_munge() {
  if alive_pid "$MUNGE_PID" >/dev/null; then return; fi
  id munge >/dev/null 2>&1 || die "user munge is missing (package munge not installed?)"
  mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
  if [ ! -s /etc/munge/munge.key ]; then
    say "creating /etc/munge/munge.key"
    if command -v mungekey >/dev/null; then
      mungekey --create --keyfile=/etc/munge/munge.key --force
    else
      dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
  fi
  chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
  chmod 0700 /etc/munge /var/lib/munge /var/log/munge
  chmod 0755 /run/munge
  chmod 0400 /etc/munge/munge.key
  rm -f "$MUNGE_PID"
  runuser -u munge -- munged --pid-file="$MUNGE_PID" || die "munged did not start"
  local i
  for i in $(seq 1 20); do
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return
    sleep 0.5
  done
  die "munge does not work (munge -n | unmunge fails)"
}

start_slurm() {
  if ! alive_pid "$CTLD_PID" >/dev/null; then
    rm -f "$CTLD_PID"
    slurmctld || die "slurmctld did not start"
  fi
  if ! alive_pid "$SLURMD_PID" >/dev/null; then
    rm -f "$SLURMD_PID"
    slurmd -N "$NODE" || die "slurmd did not start"
  fi
}

wait_idle() {
  local t0=$SECONDS state="" resumed=0
  while [ $((SECONDS - t0)) -lt "$WAIT_S" ]; do
    state=$(timeout 5 sinfo -h -n "$NODE" -o %t 2>/dev/null | head -n 1) || state=""
    case "$state" in
      idle | mix | alloc) say "node $NODE is $state (sinfo answered after $((SECONDS - t0)) s)"; return ;;
      down* | drain* | drng* | fail*)
        # e.g. left down by an earlier controller that was killed; ReturnToService=2 usually handles it
        if [ "$resumed" -eq 0 ]; then
          timeout 5 scontrol update nodename="$NODE" state=resume 2>/dev/null || true
          resumed=1
        fi ;;
    esac
    sleep 1
  done
  die "node $NODE not idle after $WAIT_S s (sinfo state: '${state:-no answer}')"
}

up() {
  [ "$(id -u)" -eq 0 ] || die "run as root (it writes $CONF and starts daemons)"
  install_packages
  if alive_pid "$CTLD_PID" >/dev/null && alive_pid "$SLURMD_PID" >/dev/null && [ -s "$CONF" ]; then
    say "slurmctld and slurmd already run: checking them"
  else
    write_config
  fi
  start_munge
  start_slurm
  wait_idle
  say "up: $(sinfo --version), $(munged --version 2>&1 | head -n 1)"
}

stop_pidfile() {
  local name=$1 file=$2 pid i
  if ! pid=$(alive_pid "$file"); then
    rm -f "$file"
    return
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 40); do
    kill -0 "$pid" 2>/dev/null || { say "stopped $name ($pid)"; rm -f "$file"; return; }
    sleep 0.25
  done
  kill -KILL "$pid" 2>/dev/null || true
  say "killed $name ($pid): it ignored SIGTERM for 10 s"
  rm -f "$file"
}

down() {
  # Leftover jobs (e.g. from an interrupted test) would keep their slurmstepd processes alive.
  if alive_pid "$CTLD_PID" >/dev/null && command -v scancel >/dev/null; then
    timeout 10 scancel --user="$(id -un)" 2>/dev/null || true
  fi
  stop_pidfile slurmd "$SLURMD_PID"
  stop_pidfile slurmctld "$CTLD_PID"
  stop_pidfile munged "$MUNGE_PID"
}

status() {
  local name file
  for name in munged:$MUNGE_PID slurmctld:$CTLD_PID slurmd:$SLURMD_PID; do
    file=${name#*:}
    if pid=$(alive_pid "$file"); then echo "${name%%:*}: running ($pid)"; else echo "${name%%:*}: not running"; fi
  done
  command -v sinfo >/dev/null && { timeout 5 sinfo || echo "sinfo: no answer"; }
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
