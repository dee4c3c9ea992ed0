"""chainrule evaluate on a finished run."""

import json

from chainrule.cli import main


def test_evaluate_accepts_the_model_file_as_well_as_its_folder(tmp_path, capsys):
    assert main(["train", "--dataset", "spiral", "--epochs", "2", "--quiet",
                 "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(tmp_path)]) == 0
    by_folder = json.loads(capsys.readouterr().out)
    assert main(["evaluate", "--checkpoint", str(tmp_path / "model.crk")]) == 0
    assert json.loads(capsys.readouterr().out) == by_folder
