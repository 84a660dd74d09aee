#!/usr/bin/env bash
# A single-node SLURM on this machine, for the cluster tests (tests/test_cluster_slurm.py) and for trying
# `sparsity-lab sweep FILE --executor slurm` on a workstation. Run as root; idempotent (a second call
# only checks that the node is idle; a changed slurm.conf restarts the daemons). Debian/Ubuntu: installs
# slurm-wlm and munge with apt-get.
#
#   sudo tools/slurm/start_local_slurm.sh          # prints the SLURM version and `sinfo` when ready
#
# What it writes: /etc/slurm/slurm.conf (this host, its CPUs and memory from `slurmd -C`, CPU only,
# partition $SLURM_PARTITION (default "lab", the default partition), proctrack/linuxproc, task/none,
# select/cons_tres, no cgroups and no accounting database), logs under /var/log/slurm/.
# Stop it with: scontrol shutdown; kill "$(cat /run/munge/munged.pid)".
set -euo pipefail

PARTITION="${SLURM_PARTITION:-lab}"
CONF=/etc/slurm/slurm.conf
WAIT_S="${SLURM_START_TIMEOUT_S:-60}"

die() { echo "start_local_slurm: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and starts daemons)"

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null || ! command -v sinfo >/dev/null; then
  command -v apt-get >/dev/null || die "slurm-wlm/munge missing and no apt-get to install them"
  echo "start_local_slurm: installing slurm-wlm and munge (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null || die "apt-get update failed"
  apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null || die "apt-get install slurm-wlm munge failed"
fi

# --- slurm.conf for this host (CPUs, RealMemory from slurmd -C)
HOST="$(hostname -s)"
NODE_LINE="$(slurmd -C | head -n1)"
CPUS="$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$NODE_LINE")"
MEM="$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"$NODE_LINE")"
MEM=$(( MEM * 9 / 10 ))  # leave room for the OS, or slurmd drains the node for "Low RealMemory"
install -d /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat > "$CONF.new" <<CONFEOF
# Written by tools/slurm/start_local_slurm.sh: a single-node SLURM for tests and workstations.
ClusterName=sparsitylab
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# A requeued job waits cred_expire seconds before it may start again (default 120).
AuthInfo=cred_expire=10
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
JobRequeue=1
MinJobAge=600
MessageTimeout=30
SlurmdTimeout=120
DefMemPerCPU=1024
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONFEOF
# slurmd 22.05 always loads a cgroup plugin (autodetected v1/v2); nothing here uses cgroups (no
# proctrack/task cgroup), so no mounts are made.
echo "CgroupAutomount=no" > /etc/slurm/cgroup.conf

node_state() { sinfo -h -N -o '%T' 2>/dev/null | head -n1 || true; }
controller_up() { scontrol ping 2>/dev/null | grep -q UP; }
if cmp -s "$CONF.new" "$CONF"; then
  rm "$CONF.new"
  if controller_up && [[ "$(node_state)" =~ ^(idle|mixed|allocated)$ ]]; then
    echo "start_local_slurm: already running"; slurmctld -V; sinfo; exit 0
  fi
else
  mv "$CONF.new" "$CONF"
  if controller_up; then  # a new configuration: restart the daemons
    echo "start_local_slurm: slurm.conf changed, restarting slurmctld and slurmd"
    scontrol shutdown >/dev/null 2>&1 || true
    for _ in $(seq 30); do
      { [ -f /run/slurmctld.pid ] && kill -0 "$(cat /run/slurmctld.pid)" 2>/dev/null; } || \
        { [ -f /run/slurmd.pid ] && kill -0 "$(cat /run/slurmd.pid)" 2>/dev/null; } || break
      sleep 1
    done
  fi
fi

# --- munge: a key and the daemon (as the munge user)
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
[ -s /etc/munge/munge.key ] || { dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 2>/dev/null;
  chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key; }
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  runuser -u munge -- /usr/sbin/munged || die "munged did not start (see /var/log/munge/munged.log)"
  sleep 1
  munge -n | unmunge >/dev/null || die "munge does not work (see /var/log/munge/munged.log)"
fi

# --- daemons (each only if not running)
pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
pid_alive /run/slurmctld.pid || slurmctld || die "slurmctld did not start (see /var/log/slurm/slurmctld.log)"
pid_alive /run/slurmd.pid || slurmd || die "slurmd did not start (see /var/log/slurm/slurmd.log)"

for _ in $(seq "$WAIT_S"); do
  state="$(node_state)"
  case "$state" in
    idle|mixed|allocated) echo "start_local_slurm: node $HOST $state, partition $PARTITION"; slurmctld -V; sinfo; exit 0 ;;
    down*|drain*) scontrol update NodeName="$HOST" State=RESUME 2>/dev/null || true ;;
  esac
  sleep 1
done
die "node $HOST not idle after ${WAIT_S}s (state: $(node_state)); see /var/log/slurm/slurmctld.log and slurmd.log"
