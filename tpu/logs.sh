#!/usr/bin/env bash
# Streams worker 0's output (the only one that logs) until main.py ends there.
#   tpu/logs.sh --name=ssl --zone=us-central2-b
# shellcheck source=tpu/common.sh
source "$(dirname "$0")/common.sh"
parse_options "$@"
((${#REST[@]} == 0)) || die "unknown options: ${REST[*]}"

on_workers 0 "tail -n +1 -f --pid=\"\$(cat ~/$REMOTE_PID)\" ~/$REMOTE_LOG"
