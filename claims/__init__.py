"""Claims: extract atomic claims from a response, verify them against evidence, aggregate.

Pure domain code: no web framework, no database, no retrieval imports.
"""
