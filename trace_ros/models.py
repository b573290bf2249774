"""Where the embedded trace-tiny model lives: the source tree or the installed share dir."""

import pathlib

MODEL_NAME = 'trace-tiny'


def default_model_dir() -> str:
    """Directory of the embedded model (it may not exist until the model has been trained)."""
    source = pathlib.Path(__file__).resolve().parents[1] / 'models' / MODEL_NAME
    if source.is_dir():
        return str(source)
    try:
        from ament_index_python.packages import get_package_share_directory
        return str(pathlib.Path(get_package_share_directory('trace_ros')) / 'models' /
                   MODEL_NAME)
    except (ImportError, LookupError):
        return str(source)


def model_source(model: str) -> str:
    """
    Return where to load ``model`` from: '' or 'trace-tiny' is the embedded model.

    Anything else (a local directory or a hub id) is returned as given.
    """
    return default_model_dir() if model in ('', MODEL_NAME) else model
