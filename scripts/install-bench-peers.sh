#!/bin/sh
# The bench's peer (QEMU, for measurement 4's `-M microvm -accel kvm`
# column) is one of the tools scripts/setup.sh installs with everything
# else the build and the tests need; this name stays for old instructions.
set -eu
exec sh "$(dirname "$0")/setup.sh" "$@"
