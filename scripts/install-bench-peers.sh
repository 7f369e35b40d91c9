#!/bin/sh
# Installs the peers seraph-v-bench compares Seraph-V against (measurement 4):
# QEMU (qemu-system-x86_64, for `-M microvm -accel kvm`) from Debian's
# archive. Run as root, or with sudo. Without it the bench skips the QEMU
# column and says so.
set -eu

if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi

if command -v qemu-system-x86_64 >/dev/null 2>&1; then
    echo "qemu-system-x86_64 is already installed: $(qemu-system-x86_64 --version | head -n 1)"
    exit 0
fi

echo "apt-cache policy qemu-system-x86:"
apt-cache policy qemu-system-x86
$SUDO apt-get update
# --no-install-recommends: the emulator and its firmware (qboot's
# bios-microvm.bin comes with qemu-system-data), no GUI or extra tools.
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends qemu-system-x86
qemu-system-x86_64 --version | head -n 1
