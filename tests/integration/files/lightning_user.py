"""A user's Lightning script, not ours: standard checkpointing, resume from the last checkpoint,
and writes where training code writes.

    torchrun ... lightning_user.py EPOCHS

Lightning saves on global rank 0 (ModelCheckpoint(save_last=True)) into $TORCHRUN_CHECKPOINT_DIR
and every rank resumes with ckpt_path="last". Trainer(devices=, num_nodes=) come from the job's
PL_TRAINER_* environment. Each rank also writes ~/.cache, the XDG cache, $OUTPUTS and a system
folder, and prints what worked.
"""

import os
import pathlib
import sys

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class Model(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(8, 1)

    def training_step(self, batch, _index):
        x, y = batch
        loss = nn.functional.mse_loss(self.layer(x), y)
        self.log("loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


class Report(Callback):
    def on_train_start(self, trainer, pl_module):
        print("rank %d starts at epoch %d" % (trainer.global_rank, trainer.current_epoch), flush=True)


def attempt(path):
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("rank %s\n" % os.environ.get("RANK"))
        return "ok"
    except OSError as error:
        return "refused (%s)" % error.strerror


def main():
    epochs = int(sys.argv[1])
    rank = int(os.environ.get("RANK", "0"))
    tries = {
        "home-cache": pathlib.Path.home() / ".cache" / "user-tool" / ("rank%d" % rank),
        "xdg-cache": pathlib.Path(os.environ.get("XDG_CACHE_HOME", "/nonexistent")) / "other-tool" / ("rank%d" % rank),
        "outputs": pathlib.Path(os.environ.get("OUTPUTS", "/srv/outputs")) / ("rank%d.txt" % rank),
        "system": pathlib.Path("/opt/user-was-here-rank%d" % rank),
    }
    print("rank %d home=%s %s" % (rank, pathlib.Path.home(), " ".join("%s=%s" % (k, attempt(v)) for k, v in tries.items())), flush=True)
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(256, 8), torch.randn(256, 1))
    trainer = L.Trainer(accelerator="cpu", max_epochs=epochs, logger=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[ModelCheckpoint(dirpath=os.environ["TORCHRUN_CHECKPOINT_DIR"], save_last=True), Report()])
    trainer.fit(Model(), DataLoader(data, batch_size=32), ckpt_path="last")
    print("rank %d ended at epoch %d" % (trainer.global_rank, trainer.current_epoch), flush=True)


if __name__ == "__main__":
    main()
