"""Allocate: the responsible force of each person, or the unallocated queue with the reason."""

from ore.allocate.forces import Route, Router, load_nspl
from ore.allocate.run import allocate

__all__ = ["Route", "Router", "allocate", "load_nspl"]
