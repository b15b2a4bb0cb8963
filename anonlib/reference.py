"""Old path of :mod:`anonlib.views.reference`, kept while the notebooks import it from here.

``anonlib.reference`` *is* that module (the same object, so monkeypatching either
patches both); new code imports ``anonlib.views.reference``.
"""

import sys

from .views import reference

sys.modules[__name__] = reference
