#!/usr/bin/env bash
# Install the Debian 12 (bookworm) packages that the PyPI wheels of
# PyQt6-Qt6 / PyQt6-WebEngine-Qt6 6.11 (as used by aqt 26.9.3) need to run Anki
# headless with QT_QPA_PLATFORM=offscreen.
#
# How the list was derived: the system libraries listed as DT_NEEDED by every
# Qt/PyQt/anki shared object that a running Anki (main process + all
# QtWebEngineProcess children) actually maps, plus libGL (dlopen'ed by
# aqt.setupGL) and a font (fontconfig renders nothing without one).  Libraries
# of the offscreen path only; xcb/wayland/pulse plugins are never loaded.
# Packages already in every debian:12 base image (libc6, libstdc++6, zlib1g,
# libzstd1, libudev1, libgcc-s1) are omitted; apt pulls transitive deps itself.
#
# Idempotent: exits 0 immediately (no apt-get update) when everything is
# installed.  Non-interactive; run as root (or it uses sudo if available).
set -euo pipefail

PACKAGES=(
  # Qt WebEngine (Chromium)
  libnss3 libnspr4 libasound2 libxkbfile1 libgbm1 libxcb-dri3-0
  libxcomposite1 libxdamage1 libxrandr2 libxtst6 libxfixes3 libxext6 libx11-6
  libxcb1 libbrotli1 libgssapi-krb5-2 libexpat1
  # Qt Gui / OpenGL dispatch (aqt dlopens libGL.so.1 even for "software")
  libgl1 libegl1 libxkbcommon0 libglib2.0-0 libdbus-1-3
  # fonts
  libfontconfig1 libfreetype6 fonts-dejavu-core
)

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "installed" ]] || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "system_deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "system_deps: need root to install: ${missing[*]}" >&2; exit 1
  fi
fi

echo "system_deps: installing ${missing[*]}"
APT=($SUDO env DEBIAN_FRONTEND=noninteractive apt-get)
"${APT[@]}" update -qq </dev/null
"${APT[@]}" install -y -qq --no-install-recommends "${missing[@]}" </dev/null
echo "system_deps: done"
