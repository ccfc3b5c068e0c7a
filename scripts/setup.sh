#!/usr/bin/env bash
# Installs the Debian packages eat needs to build and test, when missing. Idempotent; prints
# nothing when everything is already there.
set -euo pipefail

packages=(build-essential cmake libeigen3-dev libtomlplusplus-dev doctest-dev nlohmann-json3-dev libcli11-dev
          libopenmpi-dev openmpi-bin bible-kjv libsentencepiece-dev)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup: installing ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
