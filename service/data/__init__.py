"""The data layer: SQLAlchemy models and sessions, shared by the web and the worker."""
