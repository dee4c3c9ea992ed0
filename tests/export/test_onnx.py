"""ONNX export checked in a real runtime: onnxruntime gives the outputs chainrule gives."""

import numpy as np
import pytest

from chainrule import cli, nn
from chainrule.data import load_dataset
from chainrule.experiment import RunConfig, train
from chainrule.export import ExportError, export_run, load_run_model, to_onnx

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime (the onnx extra) is not installed")

TOL = dict(rtol=1e-5, atol=1e-5)


def run_onnx(path, X):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (name,) = [i.name for i in session.get_inputs()]
    return session.run(None, {name: np.asarray(X, dtype=np.float32)})[0]


def inputs(n, d, seed=0):
    # wide enough to reach both tails of every activation (saturation, negative branch)
    return (np.random.default_rng(seed).normal(size=(n, d)) * 4).astype(np.float32)


ACTIVATION_LAYERS = {**{name: cls for name, cls in nn.ACTIVATIONS.items()},
                     "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
                     "leaky_relu_0.2": lambda: nn.LeakyReLU(0.2),
                     "elu_0.5": lambda: nn.ELU(alpha=0.5)}


@pytest.mark.parametrize("activation", ACTIVATION_LAYERS)
def test_an_mlp_with_each_activation_agrees_with_onnxruntime(activation, tmp_path):
    model = nn.MLP(6, [32, 16], 4, activation=ACTIVATION_LAYERS[activation], dropout=0.5,
                   seed=1)
    model.eval()
    path = to_onnx(model, tmp_path / "model.onnx")
    X = inputs(200, 6)
    np.testing.assert_allclose(run_onnx(path, X), model(X).data, **TOL)
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert "Dropout" not in ops and "RandomUniformLike" not in ops  # dropout removed


def test_weights_keep_their_state_dict_names(tmp_path):
    model = nn.MLP(3, [5], 2, seed=0)
    proto = onnx.load(str(to_onnx(model, tmp_path / "m.onnx")))
    stored = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(stored[name], value)
    assert [i.name for i in proto.graph.input] == ["input"]
    assert [o.name for o in proto.graph.output] == ["logits"]


def test_a_softmax_head_and_a_linear_classifier(tmp_path):
    model = nn.Sequential(nn.Linear(4, 3, generator=0), nn.Softmax())
    X = inputs(10, 4)
    np.testing.assert_allclose(run_onnx(to_onnx(model, tmp_path / "s.onnx"), X),
                               model(X).data, **TOL)
    linear = nn.MLP(4, [], 3, seed=0)  # --hidden none
    np.testing.assert_allclose(run_onnx(to_onnx(linear, tmp_path / "l.onnx"), X),
                               linear(X).data, **TOL)


class Softplus(nn.Module):
    def forward(self, x):
        return (1 + x.exp()).log()


def test_a_layer_it_cannot_express_is_one_error_naming_the_layer(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), Softplus(), nn.Linear(4, 2))
    with pytest.raises(ExportError, match=r"layer '1' \(Softplus\).*supports Linear"):
        to_onnx(model, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_a_model_with_its_own_forward_is_refused(tmp_path):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)

        def forward(self, x):
            return self.fc(x) * 2

    with pytest.raises(ExportError, match="cannot export Net: .*Sequential"):
        to_onnx(Net(), tmp_path / "m.onnx")


@pytest.fixture(scope="module")
def spiral_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "spiral"
    train(RunConfig(dataset="spiral", hidden=[20, 20], activation="gelu", dropout=0.2,
                    epochs=3, out=str(out)), progress=False)
    return out


def test_an_exported_run_takes_the_data_set_as_it_comes(spiral_run, tmp_path):
    """The run's standardisation is part of the exported model: raw features in."""
    path = export_run(spiral_run, tmp_path / "spiral.onnx")
    model, scaler, _ = load_run_model(spiral_run)
    X = load_dataset("spiral", seed=0).X_val  # the spiral has no test split
    expected = model((X - scaler["mean"]) / scaler["std"]).data
    np.testing.assert_allclose(run_onnx(path, X), expected, **TOL)


def test_the_export_command(spiral_run, tmp_path, capsys):
    out = tmp_path / "model.onnx"
    assert cli.main(["export", "--checkpoint", str(spiral_run), "--format", "onnx",
                     "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert run_onnx(out, inputs(7, 2)).shape == (7, 3)


def test_the_export_command_on_a_folder_that_is_no_run(tmp_path, capsys):
    code = cli.main(["export", "--checkpoint", str(tmp_path), "--format", "onnx",
                     "--out", str(tmp_path / "m.onnx")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "no model.crk in" in err
