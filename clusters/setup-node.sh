#!/usr/bin/env bash
# Sets up one cluster node for gansweep: a venv at ~/venv on Python >= 3.11 with gansweep and
# the versions constraints.txt pins. Run from aws.yaml / gcp.yaml setup_commands (the project is
# mounted at ~/gansweep); safe to run again. In the gansweep image (clusters/Dockerfile), which
# has everything, ~/venv/bin just points at the image's python, ray and gansweep.
set -euo pipefail
cd "$(dirname "$0")/.."
MIN="3, 11"

newer() { command -v "$1" >/dev/null && "$1" -c "import sys; sys.exit(sys.version_info < ($MIN))"; }

PY=""
for candidate in python3.13 python3.12 python3.11 python3; do
    if newer "$candidate"; then PY=$candidate; break; fi
done
if [ -z "$PY" ]; then  # Ubuntu 22.04 images ship Python 3.10
    apt="sudo apt-get -o DPkg::Lock::Timeout=600 -y -q"  # a first boot's unattended upgrades
    $apt install software-properties-common
    sudo add-apt-repository -y ppa:deadsnakes/ppa
    $apt update && $apt install python3.11 python3.11-venv
    PY=python3.11
fi

if [ -x ~/venv/bin/python ] && ! newer ~/venv/bin/python; then
    rm -rf ~/venv  # made by an older Python: constraints.txt cannot resolve there
fi
if (cd / && "$PY" -c "import importlib.metadata as m; m.version('gansweep')") 2>/dev/null; then
    # the gansweep image: ~/venv/bin holds its python, ray and gansweep, for the start commands
    mkdir -p ~/venv/bin
    for tool in python ray gansweep; do
        ln -sf "$(dirname "$(command -v "$PY")")/$tool" ~/venv/bin/$tool
    done
    echo "gansweep is in the image: ~/venv/bin points at it"
    exit 0
fi
[ -x ~/venv/bin/python ] || "$PY" -m venv ~/venv
~/venv/bin/pip install -q --upgrade pip
~/venv/bin/pip install -q -c constraints.txt -e '.[postgres]'
echo "gansweep $(~/venv/bin/python -c 'import importlib.metadata as m; print(m.version("gansweep"))') on $(~/venv/bin/python --version)"
