# Source this file to use trace_ros from this checkout: the venv, the colcon install
# space (generated interfaces, LD_LIBRARY_PATH) and the sources, in that order of lookup.
_trace_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_trace_venv="${TRACE_VENV:-$HOME/.cache/trace_ros/venv}"
if [ ! -f "$_trace_root/install/setup.bash" ] || [ ! -x "$_trace_venv/bin/python" ]; then
  echo "trace_ros is not set up yet: run scripts/setup.sh" >&2
  return 1
fi
# shellcheck disable=SC1091
source "$_trace_venv/bin/activate"
# colcon's setup scripts read unset variables; they fail under `set -u`.
_trace_nounset=$(set +o | grep nounset)
set +u
export AMENT_PREFIX_PATH="$_trace_venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
# Upstream launch/tf2_ros/message_filters built by scripts/setup.sh from ../shared/ros_extras.
_trace_extras="${TRACE_ROS_EXTRAS:-$(dirname "$_trace_venv")/ros_extras}"
if [ -f "$_trace_extras/local_setup.bash" ]; then
  # shellcheck disable=SC1091
  source "$_trace_extras/local_setup.bash"
fi
# shellcheck disable=SC1091
source "$_trace_root/install/setup.bash"
eval "$_trace_nounset"
export PYTHONPATH="$_trace_root${PYTHONPATH:+:$PYTHONPATH}"
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
# Best-effort camera images are lost with Fast DDS's default 512 KiB shared-memory segment:
# every ROS process started from this shell loads trace_ros's profile (config/).
export FASTDDS_DEFAULT_PROFILES_FILE="${FASTDDS_DEFAULT_PROFILES_FILE:-$_trace_root/config/fastdds_profile.xml}"
export MUJOCO_GL="${MUJOCO_GL:-egl}"
unset _trace_root _trace_venv _trace_nounset _trace_extras
