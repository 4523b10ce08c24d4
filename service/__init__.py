"""gradschool's web service: learner portal, instructor REST API, and the data layer.

Kept import-light: the worker imports `service.data` and `service.config` without Flask views.
"""
