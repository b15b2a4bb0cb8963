"""Old path of :mod:`anonlib.views.player`, kept while the notebooks import it from here.

``anonlib.player`` *is* that module (the same object, so monkeypatching either
patches both); new code imports ``anonlib.views.player``.
"""

import sys

from .views import player

sys.modules[__name__] = player
