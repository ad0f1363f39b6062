"""Persistence: SQLAlchemy models, engine and repository functions.

Each repository function owns its transaction: it commits what belongs together
or rolls all of it back.
"""
