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



def test_sweep_without_dask_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    import sys

    for name in ("distributed", "dask"):  # as if the sweep extra were not installed
        monkeypatch.setitem(sys.modules, name, None)
    code = main(["sweep", "--dataset", "spiral", "--epochs", "2", "--trials", "2",
                 "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and 'pip install "chainrule[sweep]"' in err
    assert len(err.strip().splitlines()) == 1
