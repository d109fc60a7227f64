#!/usr/bin/env bash
# Installs what Doorstep needs, only when it changed: a virtualenv with the Python package,
# the npm packages from the committed lockfile, and (with --test) a Chromium for the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

fail() { echo "setup: $*" >&2; exit 1; }

PYTHON="${PYTHON:-python3}"
command -v "$PYTHON" >/dev/null || fail "Python 3.11 or newer is needed (python3 not found)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || fail "Python 3.11 or newer is needed; found $("$PYTHON" --version)"
command -v node >/dev/null || fail "Node.js 20 or newer is needed (node not found)"
node -e 'process.exit(parseInt(process.versions.node) < 20 ? 1 : 0)' \
  || fail "Node.js 20 or newer is needed; found $(node --version)"

if [[ ! -x .venv/bin/python ]]; then
  "$PYTHON" -m venv .venv || fail "could not create .venv (on Debian: apt-get install python3-venv)"
fi
extras=""
[[ $want_test == 1 ]] && extras="[test]"
stamp=".venv/.doorstep-installed"
hash="$(sha256sum pyproject.toml | cut -c1-16)"
# An install with the test extras also serves ./start.
if ! grep -qxF -e "$hash$extras" -e "$hash[test]" "$stamp" 2>/dev/null; then
  echo "setup: installing Python packages into .venv"
  .venv/bin/pip install --quiet --disable-pip-version-check -e ".$extras"
  echo "$hash$extras" >> "$stamp"
fi

lock_hash="$(sha256sum package-lock.json | cut -c1-16)"
if [[ "$(cat node_modules/.doorstep-installed 2>/dev/null)" != "$lock_hash" ]]; then
  echo "setup: installing npm packages from package-lock.json (about 2 minutes the first time)"
  # Install scripts stay off: leveldown finds its prebuilt binary at run time, and the
  # optional sqlite3 would otherwise compile from source.
  npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
  echo "$lock_hash" > node_modules/.doorstep-installed
fi

if [[ $want_test == 1 ]]; then
  if [[ -z "${DOORSTEP_CHROMIUM:-}" ]]; then
    for c in /usr/bin/chromium /usr/bin/chromium-browser; do
      [[ -x $c ]] && { DOORSTEP_CHROMIUM=$c; break; }
    done
  fi
  if [[ -z "${DOORSTEP_CHROMIUM:-}" && $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian's chromium for the browser tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    DOORSTEP_CHROMIUM=/usr/bin/chromium
  fi
  if [[ -z "${DOORSTEP_CHROMIUM:-}" ]]; then
    echo "setup: downloading Playwright's Chromium"
    .venv/bin/playwright install chromium
    DOORSTEP_CHROMIUM=playwright
  fi
  echo "$DOORSTEP_CHROMIUM" > .venv/.doorstep-chromium
  # tests/deploy validates deploy/compose.*.yml with a real Compose client.
  if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null \
      && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian's docker-compose for the deployment tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null
  fi
fi
