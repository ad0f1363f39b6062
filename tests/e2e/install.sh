#!/usr/bin/env bash
# What the end-to-end tests drive, installed where they look for it (tests/e2e/conftest.py):
# Debian's chromium and chromium-driver, and Label Studio 1.23.2 in a virtual environment of
# its own (about 1 GB, kept between runs). Idempotent: what is there is left alone.
set -euo pipefail

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  echo "installing chromium and chromium-driver (Debian)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q chromium chromium-driver >/dev/null \
    || { apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null; }
fi

LS_VENV="${CLAIMSIEVE_LABEL_STUDIO_VENV:-$HOME/.cache/claimsieve/label-studio-1.23.2}"
if [ ! -x "$LS_VENV/bin/label-studio" ]; then
  echo "installing Label Studio 1.23.2 into $LS_VENV (about 1 GB)" >&2
  rm -rf "$LS_VENV"
  python3 -m venv "$LS_VENV"
  # sentry-sdk 3 dropped an option Label Studio 1.23.2 passes at start-up.
  "$LS_VENV/bin/pip" install --quiet label-studio==1.23.2 'sentry-sdk<3'
fi
echo "e2e tools: $(/usr/bin/chromium --version 2>/dev/null), label-studio at $LS_VENV" >&2
