"""Entry point (`python -m trainer.main EPOCHS`): a standard Lightning training.

Reads the project's config, builds the model from a sibling module, and checkpoints as Lightning
does: ModelCheckpoint(save_last=True) on global rank 0 into $TORCHRUN_CHECKPOINT_DIR, resumed on
every rank with ckpt_path="last". Trainer(devices=, num_nodes=) come from the job's PL_TRAINER_*
environment. Each rank also writes where training code writes (~/.cache, the XDG cache, $OUTPUTS)
and where it must not (/opt), and prints what worked and its own requirement's version (tabulate).
"""

import os
import pathlib
import sys
from importlib import metadata

import lightning as L
import tabulate
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from trainer.model import Regression

CONFIG = pathlib.Path(__file__).resolve().parent.parent / "configs" / "train.cfg"


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
    width = int(dict(line.split("=", 1) for line in CONFIG.read_text().split())["width"])
    tries = {
        "home-cache": pathlib.Path.home() / ".cache" / "user-tool" / ("rank%d" % rank),
        "xdg-cache": pathlib.Path(os.environ.get("XDG_CACHE_HOME", "/nonexistent")) / "other-tool" / ("rank%d" % rank),
        "outputs": pathlib.Path(os.environ.get("OUTPUTS", "/srv/outputs")) / ("rank%d.txt" % rank),
        "system": pathlib.Path("/opt/user-was-here-rank%d" % rank),
    }
    print("rank %d width=%d home=%s %s tabulate=%s" % (rank, width, pathlib.Path.home(),
                                                       " ".join("%s=%s" % (k, attempt(v)) for k, v in tries.items()), metadata.version(tabulate.__name__)), flush=True)
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(256, width), torch.randn(256, 1))
    trainer = L.Trainer(accelerator="cpu", max_epochs=epochs, logger=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[ModelCheckpoint(dirpath=os.environ["TORCHRUN_CHECKPOINT_DIR"], save_last=True), Report()])
    trainer.fit(Regression(width), DataLoader(data, batch_size=32), ckpt_path="last")
    print("rank %d ended at epoch %d" % (trainer.global_rank, trainer.current_epoch), flush=True)
    # Leave together and close the process group: a rank whose interpreter exits while its gloo threads
    # still run aborts ("terminate called without an active exception", SIGABRT) - seen when a relaunch
    # resumed after the last epoch and every rank ended at once; its unit failed and restarted alone.
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
