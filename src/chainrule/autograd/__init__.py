"""Gradients as values, and whole Jacobians and Hessians.

``grad`` computes gradients without touching any ``.grad`` (as ``torch.autograd.grad``);
``chainrule.autograd.functional`` builds Jacobians and Hessians and their products with
vectors (as ``torch.autograd.functional``). The common ones are re-exported here:
``cr.autograd.jacobian``, ``hessian``, ``vjp``, ``jvp``, ``hvp``, ``vhp``, ``jacobian_size``.
"""

from . import functional
from .functional import hessian, hvp, jacobian, jacobian_size, jvp, vhp, vjp
from .gradients import grad
