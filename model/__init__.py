"""LLaMA-architecture models: shapes and exact accounting, the decoder, training and export.

Importing this package does not import torch, so that fast commands stay fast; `model.llama`,
`model.train` and `model.export` import it.
"""

from model.config import ModelConfig
from model.sizes import PRESETS, config_for_num_params, parse_count

__all__ = ["PRESETS", "ModelConfig", "config_for_num_params", "parse_count"]
