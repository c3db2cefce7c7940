"""Sharing architectures beyond hard parameter sharing, registered in `multitask.models.network.SHARING`.

Importing this package registers `mmoe` (Multi-gate Mixture-of-Experts, Ma et al. KDD 2018) and `cross_stitch`
(Cross-stitch networks, Misra et al. CVPR 2016); `hard` lives in `multitask.models.network`.

>>> from multitask.models.network import SHARING
>>> SHARING.names()
['cross_stitch', 'hard', 'mmoe']
"""

from multitask.models.sharing.cross_stitch import CrossStitchNetwork, CrossStitchUnit, cross_stitch_sharing
from multitask.models.sharing.mmoe import Experts, MMoEShared, MMoETaskBlock, mmoe_sharing

__all__ = ["CrossStitchNetwork", "CrossStitchUnit", "Experts", "MMoEShared", "MMoETaskBlock",
           "cross_stitch_sharing", "mmoe_sharing"]
