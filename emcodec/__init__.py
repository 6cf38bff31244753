"""emcodec: temporal compressive-sensing codec for electron-microscopy movies.

Nothing heavy is imported here: compressing and inspecting never load torch.
"""

__version__ = "0.1.0"
