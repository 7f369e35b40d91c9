#!/bin/sh
# Installs what the build and the tests need on a fresh Debian machine:
# gcc/binutils (the guest kernels), gdb (the GDB stub test), chromium (the
# live display test), qemu-system-x86 (the reference-device tests and the
# bench peer), tcpdump (pcap checks), iproute2 and iputils-ping (the TAP
# test's network namespace), util-linux (unshare; prlimit for the
# address-space-limit test). .ci/run calls it; run it once by hand too.
# Already-installed tools are left alone; without root it only checks.
set -eu

need=""
check() {
    # $1 = command, $2 = Debian package
    if ! command -v "$1" >/dev/null 2>&1; then
        need="$need $2"
    fi
}
check gcc gcc
check ld binutils
check gdb gdb
check chromium chromium
check qemu-system-x86_64 qemu-system-x86
check tcpdump tcpdump
check ip iproute2
check ping iputils-ping
check unshare util-linux
check prlimit util-linux

if [ -z "$need" ]; then
    echo "setup: all tools present"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=sudo
    else
        echo "setup: missing:$need; install them with: apt-get install$need" >&2
        exit 1
    fi
else
    SUDO=
fi

echo "setup: installing$need"
$SUDO apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need
