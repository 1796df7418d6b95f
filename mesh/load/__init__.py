"""`mesh load`: a fortio-style load tool (options, engine, report).

In-process use: ``from mesh.load.runner import run_load``.
"""
