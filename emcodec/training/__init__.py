"""Training TCS-DL on simulated (and optionally the user's own) EM movies.

Only torch and numpy are needed; `emcodec.stacks` is imported only for --data.
"""

from .train import TrainConfig, train

__all__ = ["TrainConfig", "train"]
