"""Result status codes; the values mirror the STATUS_* constants of trace_ros/PlacementResult."""

import enum


class Status(enum.IntEnum):
    """Why a placement query succeeded or failed."""

    OK = 0
    NO_FRAME = 1
    STALE_FRAME = 2
    BAD_IMAGE = 3
    NO_CAMERA_INFO = 4
    INVALID_DEPTH = 5
    NO_TRANSFORM = 6
    PARSE_ERROR = 7
    MODEL_TIMEOUT = 8
    BACKEND_ERROR = 9
    BUSY = 10
    CANCELED = 11
    BAD_INSTRUCTION = 12
    FUTURE_FRAME = 13
    NO_VALID_PLACEMENT = 14


class PlacementError(Exception):
    """A placement query failed for a reason a robot user can act on."""

    def __init__(self, status: Status, message: str):
        super().__init__(message)
        self.status = status
        self.message = message
