#!/usr/bin/env bash
# Creates .venv (Python >= 3.11) and installs the project with the given extras.
# Usage: scripts/setup.sh [EXTRAS]   e.g. scripts/setup.sh test
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "failover-sim needs Python 3.11 or newer; $python is $("$python" --version 2>&1)" >&2
  exit 2
fi
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv" >&2
  "$python" -m venv .venv
fi
spec="."
[ -n "$extras" ] && spec=".[$extras]"
echo "setup: installing $spec into .venv${FAILOVER_SIM_UNLOCKED:+ (unlocked)}" >&2
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
# The versions the tests pass with (constraints.txt, written by scripts/lock.sh);
# FAILOVER_SIM_UNLOCKED=1 lets pip take the newest within pyproject.toml's bounds.
lock=()
if [ -z "${FAILOVER_SIM_UNLOCKED:-}" ] && [ -f constraints.txt ]; then
  lock=(-c constraints.txt)
fi
log=$(mktemp)
if ! .venv/bin/python -m pip install --quiet --disable-pip-version-check ${lock[@]+"${lock[@]}"} -e "$spec" >"$log" 2>&1; then
  grep -v "^WARNING: Location" "$log" >&2
  rm -f "$log"
  echo "setup: pip install failed (above)" >&2
  exit 2
fi
rm -f "$log"
.venv/bin/python -c 'import sim' # fails loudly if the install did not work
