"""``chainrule graph`` and ``chainrule explain`` on the command line."""

import xml.etree.ElementTree as ET

from chainrule.cli import main


def test_explain_prints_the_lecture_table(capsys):
    assert main(["explain", "(x + y) * z", "--values", "x=-2,y=5,z=-4"]) == 0
    out = capsys.readouterr().out
    assert "distributor" in out and "swapper" in out and "-12" in out


def test_explain_markdown(capsys):
    assert main(["explain", "x * x", "--values", "x=3", "--markdown"]) == 0
    out = capsys.readouterr().out
    assert out.lstrip().startswith("|") and "copy: gradients add" in out


def test_graph_writes_a_well_formed_svg(tmp_path, capsys):
    path = tmp_path / "f.svg"
    assert main(["graph", "(x + y) * z", "--values", "x=-2,y=5,z=-4", "--out", str(path)]) == 0
    root = ET.fromstring(path.read_text())
    words = {t.text for t in root.iter() if t.text}
    assert {"x", "y", "z", "-12"} <= words


def test_graph_dot_by_its_extension(tmp_path, capsys):
    path = tmp_path / "g.dot"
    assert main(["graph", "sigmoid(w * x)", "--values", "w=2,x=-1", "--out", str(path)]) == 0
    assert path.read_text().startswith("digraph")
    assert capsys.readouterr().out == f"wrote {path}\n"


def test_hostile_expression_is_refused_in_one_line(tmp_path, capsys):
    marker = tmp_path / "pwned"
    code = main(["graph", f"__import__('os').system('touch {marker}')", "--out",
                 str(tmp_path / "g.svg")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "not allowed" in err
    assert not marker.exists()


def test_unknown_variable_and_bad_values(capsys):
    assert main(["explain", "x + q", "--values", "x=1"]) == 2
    assert main(["explain", "x + 1", "--values", "x=one"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "Traceback" not in err
