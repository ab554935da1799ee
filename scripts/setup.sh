#!/usr/bin/env bash
# Installs what IPIS needs on a fresh machine. Idempotent: each step is skipped when done.
#   scripts/setup.sh          Python venv with pinned packages, and npm ci
#   scripts/setup.sh system   also Debian's chromium, postgresql and nginx (tests), as root
set -euo pipefail
cd "$(dirname "$0")/.."

want_system=${1:-}

if [ "$want_system" = "system" ]; then
  missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  # the documented TLS proxy in front of gunicorn (docs/nginx-ipis.conf; tests/server)
  [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || missing+=(nginx)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "Mangler ${missing[*]}: kjør som root, eller installer med apt-get install ${missing[*]}" >&2
      exit 1
    fi
    echo "Installerer ${missing[*]} fra Debian"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ requirements.lock -nt "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -c requirements.lock -e '.[test]'
  touch "$stamp"
fi
# mypy cannot follow the editable install's import hook: it finds the installed names here.
mkdir -p .venv/typing
ln -sfn "$PWD/pyapp" .venv/typing/ipis_core
ln -sfn "$PWD/server" .venv/typing/ipis_server

if [ ! -f node_modules/.installed ] || [ package-lock.json -nt node_modules/.installed ]; then
  npm ci --no-audit --no-fund --loglevel=error
  touch node_modules/.installed
fi
