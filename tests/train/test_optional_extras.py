"""A core install (NumPy only) still trains; the optional pieces say what they need."""

import importlib.util

from chainrule.cli import main


def test_training_without_matplotlib_skips_pictures_and_says_so(tmp_path, capsys,
                                                                  monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    code = main(["train", "--dataset", "spiral", "--epochs", "2", "--quiet",
                 "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0 and 'pip install "chainrule[plot]"' in out
    assert (tmp_path / "summary.json").exists() and not (tmp_path / "curves.png").exists()

