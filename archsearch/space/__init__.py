"""Declarative search spaces: space files (`spaces/*.yaml`) sampled into ArchSpecs with Optuna."""

from archsearch.space.registry import SPACES_DIR, list_spaces, load_space
from archsearch.space.space import OutsideSpace, PrunedArchitecture, SearchSpace

__all__ = ["OutsideSpace", "PrunedArchitecture", "SPACES_DIR", "SearchSpace", "list_spaces", "load_space"]
