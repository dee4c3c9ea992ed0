"""Differential testing: random expression graphs of every operation, run through
chainrule and PyTorch (or centered differences), and shrunk to a script when they differ.

``programs`` holds what a program is and how it is checked, shrunk and printed;
``calls`` how each operation is called in both libraries; ``draw`` how a program is drawn
from a seed.
"""

from .calls import CALLS, COVERS
from .draw import MAKERS, generate
from .programs import Leaf, Program, Step, check, reproducer, shrink, torch

__all__ = ["CALLS", "COVERS", "MAKERS", "Leaf", "Program", "Step", "check", "generate",
           "reproducer", "shrink", "torch"]
