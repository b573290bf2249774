"""Thin ROS 2 glue: nodes, message conversion, QoS and TF around the pure-Python core."""
