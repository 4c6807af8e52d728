"""The daemon's work on Procrastinate (``hub run --engine procrastinate``): several workers on
several machines share one PostgreSQL job queue instead of every process scheduling everything.

``tasks.py`` the tasks (each calls one of the ``Jobs`` methods), ``periodic.py`` the schedules
(deferred once across the cluster), ``worker.py`` the worker that runs inside ``hub run``.
"""
