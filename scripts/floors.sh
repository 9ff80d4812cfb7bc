#!/usr/bin/env bash
# Runs a quick subset of the tests against the dependency floors: the lowest
# release each `>=` bound of pyproject.toml allows (dependencies and the test
# extra; uv's --resolution lowest-direct: pip has no such mode), in a temporary
# environment. A floor that no longer works fails here; raise it in
# pyproject.toml to what passes.
# Usage: scripts/floors.sh [PYTEST ARGS]   (PYTHON=python3.11 to choose the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
venv=$(mktemp -d)
trap 'rm -rf "$venv"' EXIT
"$python" -m venv "$venv"
log="$venv/install.log"
if ! { "$venv/bin/python" -m pip install --quiet --disable-pip-version-check uv \
       && "$venv/bin/uv" pip install --quiet --python "$venv/bin/python" --resolution lowest-direct -e ".[test]"; } >"$log" 2>&1; then
  grep -v "^WARNING: Location" "$log" >&2
  echo "floors: the floors do not install together (above)" >&2
  exit 2
fi
echo "floors: installed" >&2
"$venv/bin/python" -m pip list --disable-pip-version-check 2>/dev/null \
  | grep -iE "^(simpy|numpy|pandas|matplotlib|pydantic|pyyaml|pyarrow|dnspython|pytest|hypothesis) " >&2
# The quick subset: the scenario contract, the policies, results, the API and the
# help pages; no real components, no lab (about 5 minutes on 2 busy cores).
if [ "$#" -eq 0 ]; then
  set -- -x -q -p no:cacheprovider -W ignore::DeprecationWarning -m "not slow and not real" \
    tests/scenario tests/policy tests/results tests/test_api.py tests/test_help.py
fi
"$venv/bin/python" -m pytest "$@"
