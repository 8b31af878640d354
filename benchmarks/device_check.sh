#!/usr/bin/env bash
# Shim kept for the GPU issue's command: the device check moved to devcheck/; this execs its entry, devcheck/run.sh.
exec bash "$(dirname "$0")/../devcheck/run.sh" "$@"
