"""Every code block of the README works as written, each on its own.

Python blocks are copied into a file and run in a fresh interpreter in an empty folder;
every ``chainrule`` command in the other blocks is accepted by the command line's parser,
and the quick ones are run for real.
"""

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from chainrule.cli import make_parser

README = Path(__file__).parent.parent / "README.md"


def blocks(language):
    """The code blocks fenced with ```language (an empty language: plain ``` fences)."""
    found, current, lang = [], None, None
    for line in README.read_text().splitlines(keepends=True):
        if line.startswith("```"):
            if current is None:
                current, lang = [], line[3:].strip()
            else:
                if lang == language:
                    found.append("".join(current))
                current = None
        elif current is not None:
            current.append(line)
    return found


def commands():
    """Each ``chainrule ...`` line of the README's shell blocks, continuation lines joined."""
    found = []
    for block in blocks(""):
        text = block.replace("\\\n", " ")
        for line in text.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("chainrule "):
                found.append(shlex.split(line)[1:])
    return found


def run_file(tmp_path, code, timeout=300):
    script = tmp_path / "block.py"
    script.write_text(code)
    return subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("index", range(len(blocks("python"))))
def test_python_block_runs_on_its_own(index, tmp_path):
    code = blocks("python")[index]
    if "cr.fit(" in code or "load_dataset(" in code or "plot_" in code:
        pytest.importorskip("sklearn")
        pytest.importorskip("matplotlib")
    done = run_file(tmp_path, code)
    assert done.returncode == 0, done.stderr


def test_the_first_example_prints_the_lecture_gradients(tmp_path):
    done = run_file(tmp_path, blocks("python")[0])
    assert done.stdout.startswith("-4.0 -4.0 3.0")
    assert (tmp_path / "f.svg").exists()


def test_the_readme_has_python_and_command_examples():
    assert len(blocks("python")) >= 5
    assert len(commands()) >= 6


@pytest.mark.parametrize("argv", commands(), ids=lambda argv: " ".join(argv[:3]))
def test_every_command_is_accepted(argv):
    if argv == ["--version"]:
        with pytest.raises(SystemExit, match="0"):
            make_parser().parse_args(argv)
    else:
        make_parser().parse_args(argv)  # raises on an unknown option or choice


@pytest.mark.parametrize("argv", [a for a in commands() if a[0] in ("explain", "graph")
                                  or a == ["--version"]],
                         ids=lambda argv: argv[0])
def test_quick_commands_run(argv, tmp_path):
    done = subprocess.run([sys.executable, "-m", "chainrule", *argv], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == "", done.stderr


def test_compile_example_records_once_and_replays(capsys):
    (block,) = [b for b in blocks("python") if "cr.compile(train_step)" in b]
    exec(compile(block, "README", "exec"), {})
    out = capsys.readouterr().out
    assert "1 recording(s), 199 replay(s)" in out, out


def test_export_example_runs(tmp_path, monkeypatch, capsys):
    import pytest

    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    monkeypatch.chdir(tmp_path)
    (block,) = [b for b in blocks("python") if "to_onnx" in b]
    exec(compile(block, "README", "exec"), {})
    assert float(capsys.readouterr().out) < 1e-5
    assert (tmp_path / "mlp.onnx").exists() and (tmp_path / "mlp.safetensors").exists()


@pytest.mark.slow
def test_sweep_example_runs(tmp_path, monkeypatch, capsys):
    pytest.importorskip("distributed", reason='needs Dask: pip install "chainrule[sweep]"')
    monkeypatch.chdir(tmp_path)
    block = next(b for b in blocks("python") if "chainrule.sweep" in b)
    exec(compile(block, "README", "exec"), {"__name__": "__main__"})
    last = capsys.readouterr().out.strip().splitlines()[-1]  # the best values, accuracy
    assert last.startswith("{'lr'") and 0 < float(last.split()[-1]) <= 1
    assert (tmp_path / "runs/spiral-sweep/results.csv").exists()
    assert (tmp_path / "runs/spiral-sweep/best/model.crk").exists()
