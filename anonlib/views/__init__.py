"""anonlib.views: everything that shows the model to a reader; nothing here changes a World.

The model (``anonlib`` and ``anonlib.mm``) computes worlds; these modules only
read them:

- :mod:`.render`: a World as rows (:func:`~.render.world_rows`, the one place a
  World becomes named fields), then as text (``show``, ``--trace``, what nbval
  compares), as an HTML table, and as the words of a diff between two worlds.
- :mod:`.figure`: a World as a matplotlib figure (and its PNG).
- :mod:`.player`: a run as frames: the static HTML player of the book and the
  notebook :class:`~.player.Player`.
- :mod:`.htmlsteps`: the step buttons and script shared by the players (and by
  :mod:`anonlib.race`'s view).
- :mod:`.widgets`: the ipywidgets front ends: Stepper, Predict, Playground.
- :mod:`.compare`: one scenario under several schemes, side by side.
- :mod:`.reference`: the reference table, operation by entry type.
- :mod:`.magic`: the ``%%scenario`` cell magic.
- :mod:`.markup`: the one HTML escape every view uses.

Importing this package imports none of them: matplotlib and ipywidgets load
only with the module that needs them.
"""
