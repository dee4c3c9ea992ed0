"""atomic_write: a file appears complete or not at all, and failures leave no debris."""

import csv
import os
import sys

import pytest

from chainrule._io import atomic_write, atomic_write_bytes, atomic_write_text


def _names(directory):
    return sorted(p.name for p in directory.iterdir())


def test_writes_bytes_and_returns_nothing_behind(tmp_path):
    target = tmp_path / "model.ckpt"
    with atomic_write(target) as f:
        f.write(b"\x00\x01weights")
    assert target.read_bytes() == b"\x00\x01weights"
    assert _names(tmp_path) == ["model.ckpt"]


def test_success_replaces_existing_file(tmp_path):
    target = tmp_path / "summary.json"
    target.write_text("old")
    with atomic_write(str(target), "w") as f:
        f.write('{"new": true}')
    assert target.read_text() == '{"new": true}'
    assert _names(tmp_path) == ["summary.json"]


def test_old_content_stays_visible_until_the_block_ends(tmp_path):
    target = tmp_path / "history.csv"
    target.write_text("old")
    with atomic_write(target, "w") as f:
        f.write("new")
        f.flush()
        assert target.read_text() == "old"
    assert target.read_text() == "new"


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_failure_leaves_existing_file_untouched_and_no_temp_files(tmp_path, error):
    target = tmp_path / "model.ckpt"
    target.write_bytes(b"precious")
    with pytest.raises(error):
        with atomic_write(target) as f:
            f.write(b"half a checkp")
            raise error("crash while writing")
    assert target.read_bytes() == b"precious"
    assert _names(tmp_path) == ["model.ckpt"]


def test_failure_without_existing_file_creates_nothing(tmp_path):
    with pytest.raises(ValueError):
        with atomic_write(tmp_path / "new.bin") as f:
            f.write(b"partial")
            raise ValueError("boom")
    assert _names(tmp_path) == []


def test_text_mode_with_csv_writer(tmp_path):
    target = tmp_path / "history.csv"
    with atomic_write(target, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", "train_loss"])
        writer.writerow([1, 0.5])
    assert target.read_bytes() == b"epoch,train_loss\r\n1,0.5\r\n"
    with open(target, newline="") as f:
        assert list(csv.reader(f)) == [["epoch", "train_loss"], ["1", "0.5"]]


def test_text_is_utf8_by_default(tmp_path):
    target = tmp_path / "notes.txt"
    atomic_write_text(target, "∂L/∂w")
    assert target.read_bytes() == "∂L/∂w".encode("utf-8")


def test_helpers_return_the_path(tmp_path):
    target = tmp_path / "a.bin"
    assert atomic_write_bytes(str(target), b"abc") == target
    assert target.read_bytes() == b"abc"
    assert atomic_write_text(target, "xyz") == target
    assert target.read_text() == "xyz"


@pytest.mark.parametrize("mode", ["r", "a", "ab", "w+", "r+b", "x"])
def test_rejects_modes_that_are_not_plain_writes(tmp_path, mode):
    with pytest.raises(ValueError, match="mode"):
        with atomic_write(tmp_path / "f", mode):
            pass
    assert _names(tmp_path) == []


def test_missing_directory_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        with atomic_write(tmp_path / "no" / "such" / "dir.bin"):
            pass
    assert _names(tmp_path) == []


def test_refuses_to_replace_a_directory(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(IsADirectoryError):
        with atomic_write(tmp_path / "run"):
            pass
    assert _names(tmp_path) == ["run"]


def test_data_is_fsynced_before_rename(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    with atomic_write(tmp_path / "f.bin") as f:
        f.write(b"x")
        fd = f.fileno()
    assert fd in synced


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_keeps_permissions_of_replaced_file(tmp_path):
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    atomic_write_bytes(target, b"new")
    assert os.stat(target).st_mode & 0o777 == 0o640


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_new_file_gets_umask_permissions_like_open(tmp_path):
    atomic_write_bytes(tmp_path / "atomic.bin", b"x")
    (tmp_path / "plain.bin").write_bytes(b"x")
    mode = os.stat(tmp_path / "atomic.bin").st_mode & 0o777
    assert mode == os.stat(tmp_path / "plain.bin").st_mode & 0o777


def test_symlink_is_followed(tmp_path):
    real = tmp_path / "real.txt"
    real.write_text("old")
    link = tmp_path / "link.txt"
    try:
        link.symlink_to(real)
    except (OSError, NotImplementedError):
        pytest.skip("symlinks not available")
    atomic_write_text(link, "new")
    assert link.is_symlink()
    assert real.read_text() == "new"
    assert _names(tmp_path) == ["link.txt", "real.txt"]
