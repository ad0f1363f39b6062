"""Retrieval: ingest documents into passages, embed them, and search versioned snapshots.

Never imports ``claims`` or ``service``.
"""
