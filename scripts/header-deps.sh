#!/usr/bin/env bash
# Unpacks eat's header-only dependencies (Eigen, toml++, doctest, nlohmann-json, CLI11) and
# SentencePiece from Debian packages into one folder, without installing them. Debian builds
# toml++ as a small shared library, so its runtime package comes along, as SentencePiece's does
# (the binaries find them through their RPATH). Use it where apt works, then copy
# the folder to a machine that has a compiler, CMake and CUDA but no package registry:
#   scripts/header-deps.sh .deps                       # here
#   cmake -S . -B build -DEAT_MPI=OFF -DCMAKE_PREFIX_PATH=$PWD/.deps/usr   # there
# .deps/ is in .gitignore. Without MPI the binary is single-process (no mpirun).
set -euo pipefail
dest=${1:-.deps}
packages=(libeigen3-dev libtomlplusplus-dev libtomlplusplus3 doctest-dev nlohmann-json3-dev libcli11-dev
          libsentencepiece-dev libsentencepiece0)

download_dir="$dest/packages"
mkdir -p "$download_dir"
if ! (cd "$download_dir" && apt-get download "${packages[@]}" >/dev/null 2>&1); then
  # The package lists may be missing on a fresh machine.
  apt-get update -qq >/dev/null
  (cd "$download_dir" && apt-get download "${packages[@]}" >/dev/null)
fi
for deb in "$download_dir"/*.deb; do dpkg-deb -x "$deb" "$dest"; done
rm -rf "$download_dir" "$dest/usr/share/doc"
echo "header-only dependencies in $dest/usr; configure with -DCMAKE_PREFIX_PATH=$(cd "$dest" && pwd)/usr"
