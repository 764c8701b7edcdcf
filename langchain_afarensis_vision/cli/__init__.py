"""The ``afarensis-vision`` command line.

``_main`` (the parser and exit codes), ``_commands``, ``_records`` (``--json``), ``_show`` (the
text view) and ``_local`` (the API or the local server).
"""

from langchain_afarensis_vision.cli._main import main

__all__ = ["main"]
