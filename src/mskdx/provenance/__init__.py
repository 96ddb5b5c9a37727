"""Provenance of a run: the Workflow Run RO-Crate, its verification, the terminal summary and the
report's tables and front page.

This package comes after every stage: it may import any of them, none imports it.
"""
