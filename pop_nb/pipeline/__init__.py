"""Pipelines: discovery, loading, and ``pop compile``'s static checks."""

from pop_nb.pipeline.compile import compile_file, compile_pipeline
from pop_nb.pipeline.load import Pipeline, discover, load_pipeline

__all__ = ["Pipeline", "compile_file", "compile_pipeline", "discover", "load_pipeline"]
