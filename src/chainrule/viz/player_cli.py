"""``chainrule player EXPR --values x=..,y=.. --out f.html``: the backprop player of a
formula, as one offline HTML page (see ``chainrule.viz.player``)."""

from __future__ import annotations


def add_arguments(p):
    p.add_argument("expression", help='a formula such as "(x + y) * z"')
    p.add_argument("--values", default="", help="the variables, e.g. x=-2,y=5,z=-4")
    p.add_argument("--out", default="player.html", help="the HTML file to write "
                   "(default player.html)")


def run(args):
    from . import parse_values
    from .player import write_expression_player

    path = write_expression_player(args.expression, parse_values(args.values), args.out)
    print(f"wrote {path}: open it in a browser (it works offline); step with the arrow keys")
