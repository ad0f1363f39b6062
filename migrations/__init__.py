"""Alembic migrations for the claimsieve store (``service/store/models.py``)."""
