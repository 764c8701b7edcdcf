"""Corpus runs: many images described within the rate limits, resumably.

``_run`` (``describe_images``), ``_job`` (the job), ``_store`` (the crash-safe JSONL file) and
``_summary`` (the running summary).
"""

from langchain_afarensis_vision.corpus._run import (
    CorpusSummary,
    adescribe_images,
    describe_images,
)

__all__ = ["CorpusSummary", "adescribe_images", "describe_images"]
