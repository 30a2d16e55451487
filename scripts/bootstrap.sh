#!/usr/bin/env bash
# Installs every Debian package reencrypt needs to build, test, fuzz and
# benchmark, when it is missing.  Safe to run again: it installs nothing when
# all is there.  Needs root (or sudo).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libssl-dev openssl liburing-dev libzstd-dev libcurl4-openssl-dev libsqlite3-dev sqlite3
  libexpat1-dev
  libjansson-dev libcmocka-dev libbenchmark-dev g++
  clang libclang-rt-14-dev llvm
  valgrind xxd jq fio python3 python3-cryptography python3-prometheus-client python3-yaml
  curl coreutils util-linux time strace
  iproute2
  slurmctld slurmd slurm-client munge
  libpq-dev postgresql-15
  libp11-kit-dev softhsm2 opensc
)
case "$(uname -m)" in
  x86_64) packages+=(libipsec-mb-dev) ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "bootstrap: all ${#packages[@]} packages present"
  exit 0
fi
echo "bootstrap: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "bootstrap: done"
