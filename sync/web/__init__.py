"""The daemon's HTTP surface: webhooks, the admin API, the operator console, health and metrics.

``sync/daemon.py`` wires it (``sync.web.app.create_app``) and runs it; nothing here imports the
command line.
"""
