"""Reliability suites: faults, hostile inputs, properties, event loops and secrets."""
