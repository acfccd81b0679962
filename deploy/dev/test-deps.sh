#!/usr/bin/env bash
# Installs what the test suite needs beyond .venv, when it is missing:
#   - Debian's postgresql (server binaries: tests start throwaway clusters with initdb/pg_ctl),
#   - Debian's chromium (the dashboard's Playwright test drives /usr/bin/chromium),
#   - Debian's coturn (the TURN credentials test runs turnserver and turnutils_uclient),
#   - matrix-synapse from PyPI in a throwaway venv (interop tests; found via PARTA_SYNAPSE_PY),
#   - matrix-commander from PyPI in a throwaway venv (found via PARTA_MATRIX_COMMANDER),
#   - matrix-js-sdk from npm, pinned by tests/e2e/clients/jssdk/package-lock.json (Node.js
#     from Debian when the machine has none).
# Called by `make test` (and so by .ci/run). apt needs root or passwordless sudo; without them
# it says what is missing and the tests that need it fail loudly in CI or skip locally.
set -euo pipefail

SYNAPSE_VENV="${1:?usage: test-deps.sh SYNAPSE_VENV [COMMANDER_VENV]}"
COMMANDER_VENV="${2:-$(dirname "$SYNAPSE_VENV")/.venv-commander}"
COMMANDER_SPEC="${PARTA_COMMANDER_SPEC:-matrix-commander==8.0.6}"
SYNAPSE_SPEC="${PARTA_SYNAPSE_SPEC:-matrix-synapse==1.163.2}"

apt_install() {
  local sudo=""
  if [ "$(id -u)" != "0" ]; then
    if sudo -n true 2>/dev/null; then sudo="sudo -n"; else
      echo "== test-deps: cannot install $* (not root, no passwordless sudo)" >&2; return 0; fi
  fi
  echo "== test-deps: installing $* (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "${_APT_UPDATED:-}" ]; then $sudo apt-get update -qq; _APT_UPDATED=1; fi
  $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs npm)
command -v turnutils_uclient >/dev/null 2>&1 || missing+=(coturn)
if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi

if ! "$SYNAPSE_VENV/bin/python" -c "import synapse" >/dev/null 2>&1; then
  echo "== test-deps: installing $SYNAPSE_SPEC into $SYNAPSE_VENV (about a minute)"
  rm -rf "$SYNAPSE_VENV"
  python3 -m venv "$SYNAPSE_VENV"
  "$SYNAPSE_VENV/bin/python" -m pip install -q --upgrade pip
  "$SYNAPSE_VENV/bin/python" -m pip install -q "$SYNAPSE_SPEC"
fi
"$SYNAPSE_VENV/bin/python" -c "import synapse; print('== test-deps: Synapse', synapse.__version__)"

if [ ! -x "$COMMANDER_VENV/bin/matrix-commander" ]; then
  echo "== test-deps: installing $COMMANDER_SPEC into $COMMANDER_VENV"
  rm -rf "$COMMANDER_VENV"
  python3 -m venv "$COMMANDER_VENV"
  "$COMMANDER_VENV/bin/python" -m pip install -q "$COMMANDER_SPEC"
fi
echo "== test-deps: $("$COMMANDER_VENV/bin/python" -m pip show matrix-commander 2>/dev/null \
  | awk '/^Version/ {print "matrix-commander " $2}')"

JSSDK_DIR="$(cd "$(dirname "$0")/../../tests/e2e/clients/jssdk" && pwd)"
if ! cmp -s "$JSSDK_DIR/package-lock.json" "$JSSDK_DIR/node_modules/.parta-installed-lock"; then
  echo "== test-deps: installing matrix-js-sdk (npm ci)"
  (cd "$JSSDK_DIR" && npm ci --no-audit --no-fund --loglevel=error \
    && cp package-lock.json node_modules/.parta-installed-lock)
fi
node -e "console.log('== test-deps: Node.js ' + process.version + ', matrix-js-sdk ' +
  require('$JSSDK_DIR/node_modules/matrix-js-sdk/package.json').version)"
