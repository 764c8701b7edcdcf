"""Paths and helpers shared by the test suites."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SHARED_IMAGES = SHARED / "images"
OPENAPI_SPEC = SHARED / "spec" / "openapi-chat-completions.json"
