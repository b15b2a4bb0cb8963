"""Old path of :mod:`anonlib.views.figure`, kept while the notebooks import it from here.

``anonlib.figure`` *is* that module (the same object, so monkeypatching either
patches both); new code imports ``anonlib.views.figure``.
"""

import sys

from .views import figure

sys.modules[__name__] = figure
