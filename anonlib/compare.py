"""Old path of :mod:`anonlib.views.compare`, kept while the notebooks import it from here.

``anonlib/__init__.py`` already puts that module in ``sys.modules`` under this
name (so that the attribute ``anonlib.compare`` stays the function), and this
file does the same for a reader who loads it by path; new code imports
``anonlib.views.compare``.
"""

import sys

from .views import compare

sys.modules[__name__] = compare
