"""AttendNeXt Explorer's block library: plain ``torch.nn`` modules, one registry.

Importing this package registers every block; ``list_blocks()`` returns them.
"""

from .antialias import BlurPool
from .attention_condenser import AttentionCondenser
from .common import make_divisible
from .conv import ConvBnAct, DepthwiseSeparable
from .head import ClassifierHead
from .inverted_residual import InvertedResidual
from .mobileone import MobileOneBlock, RepConv
from .mobilevit import MobileViTBlock
from .registry import BlockEntry, get_block, list_blocks, register_block
from .squeeze_excite import SqueezeExcite

__all__ = [
    "AttentionCondenser",
    "BlockEntry",
    "BlurPool",
    "ClassifierHead",
    "ConvBnAct",
    "DepthwiseSeparable",
    "InvertedResidual",
    "MobileOneBlock",
    "MobileViTBlock",
    "RepConv",
    "SqueezeExcite",
    "get_block",
    "list_blocks",
    "make_divisible",
    "register_block",
]
