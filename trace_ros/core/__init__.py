"""Pure-Python TRACE core: prompts, answer parsing, scoring and camera geometry (no rclpy)."""
