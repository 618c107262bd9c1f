"""Helpers for testing pipelines offline: a local server that speaks the providers' HTTP protocols."""
