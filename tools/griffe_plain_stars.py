"""A griffe extension for the API reference: a ``*`` in a docstring is a character.

The docstrings write shapes and formulas as plain text, ``(*, in_features)`` or
``beta1**t``, but mkdocstrings renders docstrings as Markdown, where those stars would
start italics or bold. Stars are escaped outside code (inline code, indented blocks,
doctest lines), where Markdown shows them as they are anyway.
"""

from __future__ import annotations

import re

from griffe import Extension

_CODE_SPAN = re.compile(r"(`+)(?:.*?)\1")


def escape_stars(text: str) -> str:
    lines = []
    for line in text.split("\n"):
        if line.startswith("    ") or line.lstrip().startswith(">>>"):
            lines.append(line)
            continue
        pieces, end = [], 0
        for m in _CODE_SPAN.finditer(line):
            pieces.append(line[end:m.start()].replace("*", r"\*"))
            pieces.append(m.group(0))
            end = m.end()
        pieces.append(line[end:].replace("*", r"\*"))
        lines.append("".join(pieces))
    return "\n".join(lines)


class PlainStars(Extension):
    def on_instance(self, *, obj, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = escape_stars(obj.docstring.value)
