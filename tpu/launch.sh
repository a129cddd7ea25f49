#!/usr/bin/env bash
# Starts main.py on every worker (in the background; it survives the SSH session).
# Every argument that is not a TPU option goes to main.py; the workdir must be on GCS,
# where all workers read and write the same checkpoints.
#   tpu/launch.sh --name=ssl --zone=us-central2-b --config=configs/simclr_r50.py \
#       --workdir=gs://bucket/run [--config.train.batch_size=4096 ...]
# shellcheck source=tpu/common.sh
source "$(dirname "$0")/common.sh"
parse_options "$@"

workdir=""
for arg in "${REST[@]}"; do
  [[ "$arg" == --workdir=* ]] && workdir="${arg#*=}"
done
[[ "$workdir" == gs://* ]] || die "--workdir=gs://BUCKET/PATH is required (got '$workdir')"

printf -v main_args ' %q' "${REST[@]}"
on_workers all "cd ~/$REMOTE_DIR && setsid nohup python3 main.py$main_args \
  > ~/$REMOTE_LOG 2>&1 < /dev/null & echo \$! > ~/$REMOTE_PID"
echo "started on every worker of $NAME; follow it with: tpu/logs.sh --name=$NAME --zone=$ZONE"
