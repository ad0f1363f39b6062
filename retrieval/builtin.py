"""The embedded default corpus: the Python language reference shipped with the interpreter."""

from __future__ import annotations

import builtins
import inspect
import sys

from retrieval.types import Document

NAME = "python-reference"


def python_reference() -> list[Document]:
    """Documents from ``pydoc_data.topics`` and from the docstrings of the builtins.

    Returns:
        One document per reference topic and per documented builtin, present on
        every machine that has Python, no download needed.
    """
    from pydoc_data.topics import topics

    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    documents = []
    for key in sorted(topics):
        text = topics[key].strip()
        title = text.splitlines()[0].strip() if text else key
        documents.append(Document(f"topic:{key}", title, text, {"python": version}))
    for name in sorted(dir(builtins)):
        value = getattr(builtins, name)
        if name.startswith("_") or not callable(value):
            continue
        doc = inspect.getdoc(value)
        if doc and doc.strip():
            documents.append(
                Document(
                    f"builtin:{name}",
                    f"builtins.{name}",
                    f"{name}: {doc.strip()}",
                    {"python": version},
                )
            )
    return documents
