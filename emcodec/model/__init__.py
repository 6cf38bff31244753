"""The TCS-DL reconstruction network (paper Eq. 2-4, Figure 1); see docs/model.md."""

from .tcsdl import ARCHITECTURE, TCSDL, adapt_state_dict
from .weights import available_B, load_model, manifest, weights_dir

__all__ = ["ARCHITECTURE", "TCSDL", "adapt_state_dict", "available_B", "load_model", "manifest", "weights_dir"]
