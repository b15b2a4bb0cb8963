"""Old path of :mod:`anonlib.views.render`, kept while the notebooks import it from here.

``anonlib.render`` *is* that module (the same object, so monkeypatching either
patches both); new code imports ``anonlib.views.render``.
"""

import sys

from .views import render

sys.modules[__name__] = render
