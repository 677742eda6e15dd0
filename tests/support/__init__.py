"""Helpers the tests share: destinations, waiting, threads, workers, the API client, cursors.

Fixtures stay in conftest.py files; everything a test imports lives here or in tests.factories.
"""
