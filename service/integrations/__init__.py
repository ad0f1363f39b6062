"""Annotation tools: how their protocols map onto checks and reviews (Label Studio first)."""
