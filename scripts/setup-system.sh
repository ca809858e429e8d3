#!/usr/bin/env bash
# Install the system packages netscope needs (Debian/Ubuntu, as root). Does nothing when all are
# present, so `make setup` can run it every time. Arguments name extra packages (the tests' gcc).
set -euo pipefail

pkgs=(python3-bpfcc python3-venv bpftool ethtool iproute2 netbase nftables tmux "$@")
# Headers for BCC: the running kernel's own package if the archive has one, else the nearest
# distro headers (netscope merges them into a tree of its own; struct offsets come from BTF).
arch=$(dpkg --print-architecture)
headers_pkg="linux-headers-$(uname -r)"

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
have_headers=0
if [[ -d /lib/modules/$(uname -r)/build/include ]] || compgen -G "/usr/src/linux-headers-*" >/dev/null; then
    have_headers=1
fi
if ((${#missing[@]} == 0 && have_headers)); then
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "netscope setup: missing system packages (${missing[*]:-kernel headers}); run as root" >&2
    exit 2
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if ((!have_headers)); then
    if apt-cache show "$headers_pkg" >/dev/null 2>&1; then
        missing+=("$headers_pkg")
    else
        missing+=("linux-headers-$arch")
    fi
fi
echo "netscope setup: installing ${missing[*]}" >&2
# No recommends: the tests' prometheus would bring a node exporter along (a service of its own).
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
