"""The package's shape: every operation and every error class has one declared home."""

import importlib
import inspect
import pkgutil

import pytest

import chainrule as cr
from chainrule import nn
from chainrule.engine import OPERATIONS, Function


def _modules():
    for info in pkgutil.walk_packages(cr.__path__, "chainrule."):
        if info.name != "chainrule.__main__":  # running it would start the command line
            yield importlib.import_module(info.name)


def test_every_function_lives_in_ops_and_declares_its_metadata():
    for module in _modules():
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (issubclass(cls, Function) and cls is not Function
                    and cls.__module__ == module.__name__):
                assert module.__name__.startswith("chainrule.ops."), cls
                if not cls.__name__.startswith("_"):
                    assert OPERATIONS[cls.name] is cls
                    assert isinstance(cls.elementwise, bool) and isinstance(cls.symbol, str)


def test_names_users_read_are_the_functions_names():
    assert {"matmul", "linear", "leaky_relu", "cross_entropy", "log_softmax"} <= set(OPERATIONS)
    assert OPERATIONS["leaky_relu"].elementwise and OPERATIONS["elu"].elementwise
    assert not OPERATIONS["matmul"].elementwise and not OPERATIONS["softmax"].elementwise


def test_a_function_without_a_declared_name_is_refused():
    with pytest.raises(TypeError, match="declares its public name"):
        type("Softplus", (Function,), {"forward": staticmethod(lambda ctx, a: a)})


def test_every_exception_class_lives_in_errors():
    for module in _modules():
        for _, cls in inspect.getmembers(module, inspect.isclass):
            # (a private class used only as control flow inside one module is not an error)
            if (issubclass(cls, Exception) and cls.__module__.startswith("chainrule")
                    and not cls.__name__.startswith("_")):
                assert cls.__module__ == "chainrule.errors", f"{cls} defined in {cls.__module__}"


def test_the_same_bad_argument_raises_the_same_class_in_a_layer_and_its_function():
    with pytest.raises(cr.ArgumentError, match="p must be in"):
        nn.Dropout(1.5)
    with pytest.raises(cr.ArgumentError, match="p must be in"):
        nn.functional.dropout(cr.ones(3), 1.5)


def _imports_of_each_module():
    """{module: modules of the package it imports}, read from the source (imports inside
    functions included), with a package's own __init__ not counted for its modules."""
    import ast
    from pathlib import Path

    root = Path(cr.__file__).parent
    modules = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    edges = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                full = ".".join(base) + ("." + node.module if node.module else "") \
                    if node.level else (node.module or "")
                subs = {f"{full}.{a.name}" for a in node.names} & modules.keys()
                found |= subs
                if full in modules and len(subs) < len(node.names):
                    found.add(full)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names} & modules.keys()
        edges[name] = {m for m in found if m != name and not name.startswith(m + ".")}
    return edges


def test_no_import_cycle_in_the_package():
    edges = _imports_of_each_module()
    done, active = set(), []

    def visit(module):
        if module in active:
            cycle = active[active.index(module):] + [module]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if module in done:
            return
        active.append(module)
        for target in sorted(edges[module]):
            visit(target)
        active.pop()
        done.add(module)

    for module in sorted(edges):
        visit(module)
    assert "chainrule.ops" in edges["chainrule.nn.functional"]  # the scan does see imports
