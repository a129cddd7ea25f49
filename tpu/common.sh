# shellcheck shell=bash disable=SC2034  # its variables are read by the scripts sourcing it
# Sourced by the tpu/ scripts: their shared options, and gcloud aimed at one TPU.
#
#   --name=NAME          the TPU VM (and queued resource) name          (required)
#   --zone=ZONE          e.g. us-central2-b                             (required)
#   --project=PROJECT    default: gcloud's configured project
#   --type=TYPE          accelerator type, e.g. v4-8, v4-32, v5litepod-16 (default v4-8)
#   --version=VERSION    TPU runtime version (default tpu-ubuntu2204-base)
#   --spot               Spot capacity (cheaper; can be preempted at any time)
#   --preemptible        legacy preemptible TPU VM (not with --queued)
#   --queued             request the TPU through a queued resource
# Other arguments are left in REST for the script (launch.sh passes them to main.py).
set -euo pipefail

NAME="" ZONE="" PROJECT="" TYPE="v4-8" VERSION="tpu-ubuntu2204-base"
SPOT=0 PREEMPTIBLE=0 QUEUED=0
REST=()
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REMOTE_DIR="jax_ssl"       # on each worker, under the home directory
REMOTE_LOG="jax_ssl.log"   # main.py's output on each worker
REMOTE_PID="jax_ssl.pid"

die() {
  echo "$(basename "$0"): $*" >&2
  exit 2
}

parse_options() {
  local arg
  for arg in "$@"; do
    case "$arg" in
      --name=*) NAME="${arg#*=}" ;;
      --zone=*) ZONE="${arg#*=}" ;;
      --project=*) PROJECT="${arg#*=}" ;;
      --type=*) TYPE="${arg#*=}" ;;
      --version=*) VERSION="${arg#*=}" ;;
      --spot) SPOT=1 ;;
      --preemptible) PREEMPTIBLE=1 ;;
      --queued) QUEUED=1 ;;
      *) REST+=("$arg") ;;
    esac
  done
  [[ -n "$NAME" ]] || die "--name=NAME is required"
  [[ -n "$ZONE" ]] || die "--zone=ZONE is required"
  if ((QUEUED && PREEMPTIBLE)); then
    die "queued resources take --spot, not --preemptible"
  fi
}

# gcloud compute tpus SUBGROUP VERB [ARGS...], with the zone and project.
tpus() {
  local subgroup=$1 verb=$2
  shift 2
  gcloud compute tpus "$subgroup" "$verb" "$@" --zone="$ZONE" ${PROJECT:+"--project=$PROJECT"}
}

# Runs a shell command on WORKER (a number, or "all") of the TPU VM.
on_workers() {
  local worker=$1 command=$2
  tpus tpu-vm ssh "$NAME" --worker="$worker" --command="$command"
}
