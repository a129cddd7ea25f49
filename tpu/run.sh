#!/usr/bin/env bash
# The whole round trip: create the TPU, install, launch main.py on all workers, stream
# worker 0's log until training ends, then delete the TPU (also on failure or Ctrl-C).
# Run it again with the same --workdir after a preemption: training resumes from the
# latest checkpoint.
#   tpu/run.sh --name=ssl --zone=us-central2-b --type=v4-32 --spot --queued \
#       --config=configs/simclr_r50.py --workdir=gs://bucket/simclr_r50
# shellcheck source=tpu/common.sh
source "$(dirname "$0")/common.sh"
parse_options "$@"

tpu_options=(--name="$NAME" --zone="$ZONE" --type="$TYPE" --version="$VERSION")
[[ -n "$PROJECT" ]] && tpu_options+=(--project="$PROJECT")
((SPOT)) && tpu_options+=(--spot)
((PREEMPTIBLE)) && tpu_options+=(--preemptible)
((QUEUED)) && tpu_options+=(--queued)
here="$(dirname "$0")"

"$here/create.sh" "${tpu_options[@]}"
trap '"$here/delete.sh" "${tpu_options[@]}"' EXIT
"$here/setup.sh" "${tpu_options[@]}"
"$here/launch.sh" "${tpu_options[@]}" "${REST[@]}"
"$here/logs.sh" "${tpu_options[@]}"
