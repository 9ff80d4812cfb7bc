#!/usr/bin/env bash
# Quick start, command 1: set everything up and run the main job, the default
# scenario (scenarios/elb-blowup.yaml): CNAME repointing against an Elastic IP
# remap, with the table on the terminal and the figures in the results folder.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/failover-sim validate scenarios/*.yaml
exec .venv/bin/failover-sim run "$@"
