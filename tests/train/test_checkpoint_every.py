"""``Trainer(checkpoint_every=seconds)``: checkpoints only every so often, and a run
killed in between resumes from the last one with the numbers of an uninterrupted run."""

import time

import numpy as np
import pytest

from chainrule import optim
from chainrule.data import load_dataset
from chainrule.errors import ArgumentError
from chainrule.nn import MLP
from chainrule.serialization import load
from chainrule.train import BEST, CHECKPOINT, Callback, Trainer


class SlowEpochs(Callback):
    """Epochs in ``slow`` last ``seconds`` longer; the run stops (as if killed) when
    ``stop_at`` begins."""

    def __init__(self, slow=(), seconds=0.0, stop_at=None):
        self.slow, self.seconds, self.stop_at = slow, seconds, stop_at

    def on_epoch_begin(self, trainer, epoch):
        if epoch == self.stop_at:
            raise KeyboardInterrupt

    def on_epoch_end(self, trainer, record):
        if record["epoch"] in self.slow:
            time.sleep(self.seconds)


def trainer(out, callbacks=(), checkpoint_every=None):
    model = MLP(2, [16], 3, seed=0)
    return Trainer(model, optim.Adam(model.parameters(), lr=0.02), epochs=7, patience=50,
                   seed=0, out_dir=out, progress=False, callbacks=callbacks,
                   checkpoint_every=checkpoint_every)


def without_seconds(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def test_a_run_killed_between_checkpoints_resumes_to_the_same_numbers(tmp_path):
    data = load_dataset("spiral", seed=0)
    reference = trainer(tmp_path / "every-epoch")
    reference.fit(data)

    out = tmp_path / "sparse"
    # 0.6 s between checkpoints: only epoch 2 (slowed down) is followed by one
    with pytest.raises(KeyboardInterrupt):
        trainer(out, [SlowEpochs(slow=(2,), seconds=0.7, stop_at=5)], 0.6).fit(data)
    saved = load(out / CHECKPOINT)
    assert saved["epoch"] == 2
    assert load(out / BEST)["epoch"] == saved["best"]["epoch"]

    resumed = trainer(out, checkpoint_every=0.6)
    summary = resumed.fit(data, resume=True)
    assert without_seconds(resumed.history) == without_seconds(reference.history)
    for name, value in reference.model.state_dict().items():
        assert np.array_equal(resumed.model.state_dict()[name], value), name
    assert load(out / CHECKPOINT)["epoch"] == 7  # the last epoch always leaves one
    assert summary["epochs"] == 7


def test_checkpoint_every_must_be_a_number_of_seconds():
    with pytest.raises(ArgumentError, match="checkpoint_every"):
        trainer(None, checkpoint_every=-1)
    with pytest.raises(ArgumentError, match="checkpoint_every"):
        trainer(None, checkpoint_every="10s")
