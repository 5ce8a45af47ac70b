#!/usr/bin/env bash
# Install the Debian packages daxfs needs to build, test and benchmark, if any are missing.
set -euo pipefail

PACKAGES=(
	build-essential meson ninja-build pkg-config
	libfuse3-dev fuse3 liburing-dev libpmem-dev libcmocka-dev libisal-dev libbsd-dev
	python3 python3-matplotlib attr
	scdoc man-db
)

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	echo "installing: ${missing[*]}"
	SUDO=
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq || echo "apt-get update failed; trying the install anyway" >&2
	$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
