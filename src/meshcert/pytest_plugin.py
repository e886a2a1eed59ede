"""pytest plugin (entry point pytest11): options, markers and fixtures for meshcert suites."""

from __future__ import annotations
