#!/usr/bin/env bash
# Creates a TPU VM, directly or through a queued resource, and waits until it is ready.
#   tpu/create.sh --name=ssl --zone=us-central2-b --type=v4-32 [--spot|--preemptible] [--queued]
# shellcheck source=tpu/common.sh
source "$(dirname "$0")/common.sh"
parse_options "$@"
((${#REST[@]} == 0)) || die "unknown options: ${REST[*]}"

capacity=()
((SPOT)) && capacity+=(--spot)
((PREEMPTIBLE)) && capacity+=(--preemptible)

if ((QUEUED)); then
  tpus queued-resources create "$NAME" --node-id="$NAME" --accelerator-type="$TYPE" \
    --runtime-version="$VERSION" "${capacity[@]}"
  while true; do
    state="$(tpus queued-resources describe "$NAME" --format='value(state.state)')"
    case "$state" in
      ACTIVE) break ;;
      FAILED | SUSPENDED) die "queued resource $NAME is $state" ;;
      *) echo "queued resource $NAME: $state" && sleep "${TPU_POLL_SECONDS:-30}" ;;
    esac
  done
else
  tpus tpu-vm create "$NAME" --accelerator-type="$TYPE" --version="$VERSION" "${capacity[@]}"
fi
echo "TPU VM $NAME is ready in $ZONE"
