#!/usr/bin/env bash
# Usage: scripts/ensure-apt-package.sh EXECUTABLE PACKAGE WHAT
#
# Makes sure EXECUTABLE (an absolute path, e.g. /usr/bin/chromium) exists before a
# make target runs anything that needs it. When it is missing and this runs as
# root with apt-get available, installs Debian's PACKAGE (what .ci/run used to do
# by hand); otherwise prints one line saying what to install and exits 1.
# WHAT names who needs it, for those messages ("for the page tests").
set -euo pipefail

if [[ $# -ne 3 ]]; then
  echo "usage: $0 EXECUTABLE PACKAGE WHAT" >&2
  exit 2
fi
executable=$1 package=$2 what=$3

[[ -x "$executable" ]] && exit 0

if [[ $EUID -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
  echo "$executable is missing ($what): install Debian's $package first (sudo apt-get install -y $package)" >&2
  exit 1
fi

echo "$executable is missing ($what): installing Debian's $package (apt-get install -y $package)"
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -q >/dev/null && apt-get install -y -q "$package" >/dev/null; }; then
  echo "$executable is missing ($what): apt-get install -y $package failed; install it and retry" >&2
  exit 1
fi
if [[ ! -x "$executable" ]]; then
  echo "$executable is missing ($what): Debian's $package is installed but does not provide it" >&2
  exit 1
fi
