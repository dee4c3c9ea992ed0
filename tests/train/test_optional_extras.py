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


def test_evaluate_accepts_the_model_file_as_well_as_its_folder(tmp_path, capsys):
    import json

    assert main(["train", "--dataset", "spiral", "--epochs", "2", "--quiet",
                 "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(tmp_path)]) == 0
    by_folder = json.loads(capsys.readouterr().out)
    assert main(["evaluate", "--checkpoint", str(tmp_path / "model.crk")]) == 0
    assert json.loads(capsys.readouterr().out) == by_folder
