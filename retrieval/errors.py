"""Errors raised by the retrieval package.

RetrievalError                base; every error has a stable ``code`` and a human ``message``
 ├── IngestError              a document or input file cannot be read
 ├── EmbedderError            an embedding model cannot be loaded or used
 └── SnapshotError            an index snapshot is missing or inconsistent
      └── EmbedderMismatchError  a snapshot made by another embedder than the one in use
"""


class RetrievalError(Exception):
    code = "retrieval_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class IngestError(RetrievalError):
    code = "bad_document"


class EmbedderError(RetrievalError):
    code = "embedder_error"


class SnapshotError(RetrievalError):
    code = "snapshot_error"


class EmbedderMismatchError(SnapshotError):
    code = "embedder_mismatch"
