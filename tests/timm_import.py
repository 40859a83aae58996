"""Import timm (a test-only dependency) here: the workaround lives in ``explorer.timm_compat``.

timm imports torchvision at import time, and the torchvision wheel installed here cannot load its
C extension with the CPU build of torch; ``explorer.timm_compat.import_timm`` defines the two
operator schemas torchvision's import needs first (see that module). Tests import it from here.
"""

from __future__ import annotations

from explorer.timm_compat import import_timm

__all__ = ["import_timm"]
