#!/usr/bin/env bash
# Deletes the TPU VM (with --queued: its queued resource too). Checkpoints on GCS stay.
#   tpu/delete.sh --name=ssl --zone=us-central2-b [--queued]
# shellcheck source=tpu/common.sh
source "$(dirname "$0")/common.sh"
parse_options "$@"
((${#REST[@]} == 0)) || die "unknown options: ${REST[*]}"

if ((QUEUED)); then
  tpus queued-resources delete "$NAME" --force --quiet
else
  tpus tpu-vm delete "$NAME" --quiet
fi
