"""The plots: each writes a real, non-blank image, atomically, showing what it promises."""

import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
from matplotlib.image import imread  # noqa: E402

from chainrule import plots  # noqa: E402
from chainrule.errors import ChainruleError, ShapeError  # noqa: E402
from chainrule.plots import models  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _colour_codes(pixels):
    """One integer per pixel naming its 8-bit RGB colour (faster to count than RGB rows)."""
    rgb = (pixels * 255).round().astype(np.int64)
    return (rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2]).ravel()


def _read_png(path):
    """Check the file is a PNG with visible content; return its RGB pixels (H, W, 3)."""
    with open(path, "rb") as f:
        assert f.read(8) == PNG_SIGNATURE
    pixels = imread(path)[..., :3]
    height, width = pixels.shape[:2]
    assert height >= 200 and width >= 200
    assert pixels.std() > 0.05
    assert len(np.unique(_colour_codes(pixels))) >= 10
    return pixels


def _dominant_colour(patch):
    codes, counts = np.unique(_colour_codes(patch), return_counts=True)
    code = int(codes[counts.argmax()])
    return (code >> 16, code >> 8 & 255, code & 255)


def _history(epochs, lr=lambda e: 0.1):
    return [
        {"epoch": e, "train_loss": 2.0 / e, "train_accuracy": 1 - 0.5 / e,
         "val_loss": 2.2 / e, "val_accuracy": 1 - 0.6 / e, "lr": lr(e)}
        for e in range(1, epochs + 1)
    ]


# ----------------------------------------------------------------------------- curves

def test_curves_writes_png_and_returns_path(tmp_path):
    path = plots.plot_curves(_history(10), str(tmp_path / "curves.png"))
    assert path == tmp_path / "curves.png"
    pixels = _read_png(path)
    assert pixels.shape[1] > pixels.shape[0]  # panels side by side


def test_curves_single_epoch_without_validation(tmp_path):
    history = [{"epoch": 1, "train_loss": 0.7, "train_accuracy": 0.6}]
    _read_png(plots.plot_curves(history, tmp_path / "one.png"))


def test_curves_changing_lr_adds_a_panel(tmp_path):
    constant = _read_png(plots.plot_curves(_history(8), tmp_path / "constant.png"))
    decayed = _read_png(plots.plot_curves(_history(8, lr=lambda e: 0.1 * 0.5 ** e),
                                          tmp_path / "decayed.png"))
    assert decayed.shape[1] > constant.shape[1]


def test_curves_skips_missing_validation_epochs(tmp_path):
    history = _history(6)
    for row in history[::2]:
        row["val_loss"] = row["val_accuracy"] = None
    _read_png(plots.plot_curves(history, tmp_path / "sparse.png"))


def test_curves_rejects_empty_or_incomplete_history(tmp_path):
    with pytest.raises(ChainruleError, match="at least one epoch"):
        plots.plot_curves([], tmp_path / "x.png")
    with pytest.raises(ChainruleError, match="train_accuracy"):
        plots.plot_curves([{"epoch": 1, "train_loss": 1.0}], tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- boundary

def _two_blobs(seed=0):
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.normal([-1.5, 0.5], 0.4, (40, 2)),
                        rng.normal([2.0, -1.0], 0.4, (40, 2))])
    y = np.repeat([0, 1], 40)
    return X, y


def test_boundary_calls_predict_on_a_grid_covering_the_data(tmp_path, monkeypatch):
    monkeypatch.setattr(models, "_PREDICT_CHUNK", 1000)
    X, y = _two_blobs()
    calls = []

    def predict(points):
        calls.append(points.copy())
        return (points[:, 0] > 0).astype(np.int64)

    plots.plot_boundary(predict, X, y, tmp_path / "b.png", resolution=50)
    seen = np.concatenate(calls)
    assert all(c.dtype == np.float32 and c.ndim == 2 and c.shape[1] == 2 for c in calls)
    assert max(len(c) for c in calls) <= 1000 and len(calls) > 1
    assert len(seen) == 50 * 50
    assert (seen.min(axis=0) < X.min(axis=0)).all()
    assert (seen.max(axis=0) > X.max(axis=0)).all()
    assert len(np.unique(seen[:, 0])) == 50 and len(np.unique(seen[:, 1])) == 50


def test_boundary_regions_differ_on_either_side_of_the_split(tmp_path):
    X = np.array([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]])
    y = np.array([0, 0, 1, 1])
    path = plots.plot_boundary(lambda p: (p[:, 0] > 0).astype(int), X, y, tmp_path / "b.png")
    pixels = _read_png(path)
    h, w = pixels.shape[:2]
    rows = slice(int(0.4 * h), int(0.6 * h))
    left = _dominant_colour(pixels[rows, int(0.25 * w):int(0.35 * w)])
    right = _dominant_colour(pixels[rows, int(0.7 * w):int(0.8 * w)])
    white = (255, 255, 255)
    assert left != right and white not in (left, right)


def test_boundary_constant_classifier_paints_one_region(tmp_path):
    X, y = _two_blobs()
    pixels = _read_png(plots.plot_boundary(lambda p: np.zeros(len(p), int), X, y,
                                           tmp_path / "b.png"))
    h, w = pixels.shape[:2]
    rows = slice(int(0.45 * h), int(0.55 * h))
    assert (_dominant_colour(pixels[rows, int(0.2 * w):int(0.3 * w)])
            == _dominant_colour(pixels[rows, int(0.75 * w):int(0.85 * w)]))


def test_boundary_accepts_class_scores(tmp_path):
    X, y = _two_blobs()
    scores = lambda p: np.stack([-p[:, 0], p[:, 0]], axis=1)  # noqa: E731
    _read_png(plots.plot_boundary(scores, X, y, tmp_path / "b.png", resolution=40))


def test_boundary_rejects_bad_shapes(tmp_path):
    X, y = _two_blobs()
    with pytest.raises(ShapeError):
        plots.plot_boundary(lambda p: np.zeros(len(p)), X[:, :1], y, tmp_path / "b.png")
    with pytest.raises(ShapeError, match="predict"):
        plots.plot_boundary(lambda p: np.zeros(3), X, y, tmp_path / "b.png", resolution=10)


def test_boundary_failure_keeps_existing_file(tmp_path):
    path = tmp_path / "b.png"
    path.write_bytes(b"previous picture")

    def broken(points):
        raise RuntimeError("model exploded")

    with pytest.raises(RuntimeError):
        plots.plot_boundary(broken, *_two_blobs(), path)
    assert path.read_bytes() == b"previous picture"
    assert [p.name for p in tmp_path.iterdir()] == ["b.png"]


# ----------------------------------------------------------------------------- templates

def test_templates_greyscale_grid_is_grey(tmp_path):
    rng = np.random.default_rng(0)
    path = plots.plot_templates(rng.normal(size=(20, 64)), (8, 8), tmp_path / "t.png")
    pixels = _read_png(path)
    assert np.abs(pixels[..., 0] - pixels[..., 1]).max() < 0.02


def test_templates_cifar_shaped_weights_in_colour(tmp_path):
    rng = np.random.default_rng(0)
    names = ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    path = plots.plot_templates(rng.normal(size=(10, 3 * 32 * 32)), (3, 32, 32),
                                tmp_path / "t.png", titles=names)
    pixels = _read_png(path)
    assert np.abs(pixels[..., 0] - pixels[..., 1]).mean() > 0.05


def test_templates_read_channel_major_layout(tmp_path):
    red = np.concatenate([np.ones(32 * 32), np.zeros(2 * 32 * 32)])[None, :]
    pixels = _read_png(plots.plot_templates(red, (3, 32, 32), tmp_path / "red.png"))
    is_red = (pixels[..., 0] > 0.95) & (pixels[..., 1] < 0.05) & (pixels[..., 2] < 0.05)
    is_green = (pixels[..., 1] > 0.95) & (pixels[..., 0] < 0.05)
    assert is_red.mean() > 0.2 and not is_green.any()


def test_templates_limit_and_shape_errors(tmp_path):
    weights = np.random.default_rng(1).normal(size=(300, 28 * 28))
    _read_png(plots.plot_templates(weights, (28, 28), tmp_path / "t.png", max_templates=16))
    with pytest.raises(ShapeError, match="784"):
        plots.plot_templates(weights, (8, 8), tmp_path / "bad.png")
    with pytest.raises(ShapeError):
        plots.plot_templates(weights[0], (28, 28), tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


# ----------------------------------------------------------------------------- diagnostics

def _records(epochs=8):
    return [
        {"epoch": e, "layers": {
            "fc1": {"dead_fraction": 0.05 * e, "saturated_fraction": None,
                    "grad_norm": 1.0 / e, "update_ratio": 1e-3 / e},
            "fc2": {"dead_fraction": None, "saturated_fraction": 0.3,
                    "grad_norm": 0.5 / e, "update_ratio": 3e-2 / e},
        }}
        for e in range(1, epochs + 1)
    ]


def test_diagnostics_writes_png(tmp_path):
    _read_png(plots.plot_diagnostics(_records(), tmp_path / "d.png"))


def test_diagnostics_tolerates_unmeasured_and_zero_values(tmp_path):
    records = [{"epoch": 1, "layers": {"fc": {"dead_fraction": None,
                                              "saturated_fraction": None,
                                              "grad_norm": 0.0, "update_ratio": 0.0}}},
               {"epoch": 2, "layers": {"fc": {"dead_fraction": None,
                                              "saturated_fraction": None,
                                              "grad_norm": 0.1, "update_ratio": 1e-3}}}]
    _read_png(plots.plot_diagnostics(records, tmp_path / "d.png"))


def test_diagnostics_rejects_bad_records(tmp_path):
    with pytest.raises(ChainruleError):
        plots.plot_diagnostics([], tmp_path / "d.png")
    with pytest.raises(ChainruleError, match="layers"):
        plots.plot_diagnostics([{"epoch": 1}], tmp_path / "d.png")


# ----------------------------------------------------------------------------- jacobian

def test_jacobian_signed_colours(tmp_path):
    pixels = _read_png(plots.plot_jacobian(np.diag([1.0, -1.0, 2.0, -0.5]),
                                           tmp_path / "j.png", title="diagonal"))
    reddish = (pixels[..., 0] > 0.6) & (pixels[..., 2] < 0.3)
    bluish = (pixels[..., 2] > 0.6) & (pixels[..., 0] < 0.3)
    assert reddish.any() and bluish.any()


def test_jacobian_large_and_vector_inputs(tmp_path):
    rng = np.random.default_rng(0)
    _read_png(plots.plot_jacobian(rng.normal(size=(40, 60)), tmp_path / "big.png"))
    _read_png(plots.plot_jacobian(rng.normal(size=7), tmp_path / "row.png"))
    with pytest.raises(ShapeError):
        plots.plot_jacobian(np.zeros((2, 2, 2)), tmp_path / "cube.png")


def test_jacobian_of_chainrule_tensor(tmp_path):
    import chainrule as cr

    _read_png(plots.plot_jacobian(cr.tensor(np.eye(3, dtype=np.float32) * 2), tmp_path / "j.png"))


# ----------------------------------------------------------------------------- plumbing

def test_existing_file_is_replaced_and_parents_created(tmp_path):
    path = tmp_path / "runs" / "exp1" / "curves.png"
    plots.plot_curves(_history(3), path)
    first = path.read_bytes()
    plots.plot_curves(_history(5), path)
    assert path.read_bytes() != first
    assert [p.name for p in path.parent.iterdir()] == ["curves.png"]


def test_svg_by_suffix_and_unknown_suffix_rejected(tmp_path):
    path = plots.plot_jacobian(np.eye(3), tmp_path / "j.svg")
    assert b"<svg" in path.read_bytes()[:1000]
    with pytest.raises(ChainruleError, match=".png"):
        plots.plot_jacobian(np.eye(3), tmp_path / "j.bmpx")


def test_no_pyplot_and_backend_untouched(tmp_path):
    # Reading rcParams["backend"] would itself resolve (and may switch) the backend.
    chosen = getattr(matplotlib.rcParams, "_get_backend_or_none", lambda: None)
    had_pyplot = "matplotlib.pyplot" in sys.modules
    backend = chosen()
    plots.plot_jacobian(np.eye(2), tmp_path / "j.png")
    assert chosen() == backend
    assert had_pyplot or "matplotlib.pyplot" not in sys.modules


def test_missing_matplotlib_explains_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ChainruleError, match=r'pip install "chainrule\[plot\]"'):
        plots.plot_jacobian(np.eye(2), tmp_path / "j.png")
    assert not (tmp_path / "j.png").exists()
