#!/usr/bin/env bash
# Usage: scripts/while-busy.sh COMMAND [ARG...]
#
# Runs COMMAND while every core is kept busy by another process, as on a shared CI
# machine, and returns COMMAND's exit status. The busy process is bounded in time
# (BUSY_TIMEOUT, default 3600 s) and is stopped as soon as COMMAND ends, whatever
# its result. BUSY_CMD (a shell command line) replaces the default
# `stress-ng --cpu N` (N = cores).
set -euo pipefail

if [[ $# -eq 0 ]]; then
  echo "usage: $0 COMMAND [ARG...]" >&2
  exit 2
fi

timeout_s=${BUSY_TIMEOUT:-3600}
busy_cmd=${BUSY_CMD:-"stress-ng --cpu $(nproc) --timeout ${timeout_s}s --quiet"}

# In its own session (so its own process group), to stop it and its workers together.
setsid timeout --kill-after=10 "$timeout_s" bash -c "$busy_cmd" &
busy=$!
# shellcheck disable=SC2329  # called by the EXIT trap
stop_busy() {
  kill -TERM -- "-$busy" 2>/dev/null || kill -TERM "$busy" 2>/dev/null || true
  wait "$busy" 2>/dev/null || true
}
trap stop_busy EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The command starts once the busy process leads its own group (setsid has run).
for _ in $(seq 100); do
  [[ "$(ps -o pgid= -p "$busy" 2>/dev/null | tr -d ' ')" == "$busy" ]] && break
  sleep 0.05
done

echo "while-busy: '$busy_cmd' (process group $busy) keeps the cores busy while: $*"
export BUSY_PGID=$busy
status=0
"$@" || status=$?
exit "$status"
