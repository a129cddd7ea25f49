#!/usr/bin/env bash
# Installs the committed jax_ssl (git HEAD) and JAX for TPU on every worker of the VM.
#   tpu/setup.sh --name=ssl --zone=us-central2-b
# shellcheck source=tpu/common.sh
source "$(dirname "$0")/common.sh"
parse_options "$@"
((${#REST[@]} == 0)) || die "unknown options: ${REST[*]}"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
archive="$scratch/jax_ssl.tar.gz"
git -C "$REPO" archive --format=tar.gz -o "$archive" HEAD
tpus tpu-vm scp "$archive" "$NAME:~/" --worker=all
# The JAX range is the one pyproject.toml pins.
on_workers all "rm -rf ~/$REMOTE_DIR && mkdir -p ~/$REMOTE_DIR \
  && tar -xzf ~/jax_ssl.tar.gz -C ~/$REMOTE_DIR \
  && python3 -m pip install --quiet -e ~/$REMOTE_DIR 'jax[tpu]>=0.8,<0.11'"
