"""Transition functions, one module per kernel source file they model.

Every function here is named after the kernel function it models and cites
it in its docstring (file, function, version). Each works on a
:class:`anonlib.mem.Mem`; :mod:`anonlib.model` dispatches operations to them.
"""
