"""A small Lightning job on synthetic data, the collection's example and test workload.

Runs under torchrun on CPU (gloo) or GPU (NCCL). It takes the cluster shape from the
environment torchrun gives every worker (LOCAL_WORLD_SIZE, WORLD_SIZE), so nobody types
devices/num_nodes twice. Checkpoints go to --checkpoint-dir (default $TORCHRUN_CHECKPOINT_DIR).
On shared storage (torchrun_shared_dir: $TORCHRUN_SHARED_DIR is set) it checkpoints as Lightning
does, on global rank 0, and every rank resumes from that file; on node-local disks every node's
local rank 0 keeps its own last.ckpt, so a restart resumes there too. Rank 0 ends with one line:

    final: world_size=4 nodes=2 epochs=3 loss=0.012345 resumed_after_epochs=0
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import warnings
from datetime import timedelta

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.strategies import DDPStrategy
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


# Lightning 2.6 on torch 2.13 warns about its own pytree use on every rank; it is not ours to fix.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")


def log(msg: str) -> None:
    rank = os.environ.get("RANK", "?")
    print("[rank %s] %s" % (rank, msg), flush=True)


class Regression(L.LightningModule):
    """Linear regression towards a fixed random target: the loss falls steadily."""

    def __init__(self, features: int, lr: float) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.layer = nn.Linear(features, 1)
        self.loaded_loss = float("nan")

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self.layer(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True, sync_dist=True)
        return loss

    def on_save_checkpoint(self, checkpoint):
        checkpoint["last_loss"] = float(self.trainer.callback_metrics.get("train_loss", float("nan")))

    def on_load_checkpoint(self, checkpoint):
        self.loaded_loss = checkpoint.get("last_loss", float("nan"))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def synthetic(samples: int, features: int) -> TensorDataset:
    gen = torch.Generator().manual_seed(1234)
    x = torch.randn(samples, features, generator=gen)
    weight = torch.randn(features, 1, generator=gen)
    y = x @ weight + 0.01 * torch.randn(samples, 1, generator=gen)
    return TensorDataset(x, y)


class NodeLocalDDP(DDPStrategy):
    """DDP that writes each checkpoint on every node's local rank 0, not only on global rank 0.

    Lightning saves on global rank 0 alone, which suits shared storage; on node-local disks the
    other nodes would then have nothing to resume from.
    """

    def save_checkpoint(self, checkpoint, filepath, storage_options=None):
        if self.local_rank == 0:
            self.checkpoint_io.save_checkpoint(checkpoint, filepath, storage_options=storage_options)

    def remove_checkpoint(self, filepath):
        if self.local_rank == 0:
            self.checkpoint_io.remove_checkpoint(filepath)


class GracefulStop(Callback):
    """Stop on SIGTERM (systemctl stop, stop.yml) with a checkpoint, on every rank at the same step.

    torchrun forwards SIGTERM to the workers and kills them 30 s later. The ranks receive it at
    slightly different moments, so after each batch they agree through a one-number all-reduce;
    then every rank saves last.ckpt at the same step and training ends cleanly. The handler only
    sets a flag: nothing collective runs inside a signal handler. It replaces Lightning's own
    SIGTERM handler (installed when fitting starts), which broadcasts from inside the handler and
    can deadlock against a collective already in flight.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.requested = False

    def on_train_start(self, trainer, pl_module):
        signal.signal(signal.SIGTERM, self._request)

    def _request(self, signum, frame):
        self.requested = True

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        flag = torch.tensor([1.0 if self.requested else 0.0], device=pl_module.device)
        if float(trainer.strategy.reduce(flag, reduce_op="max")) > 0:
            log("SIGTERM: stopping at epoch %d" % trainer.current_epoch)  # every rank: a follower sees each one end
            trainer.save_checkpoint(self.path)
            if trainer.is_global_zero:
                log("SIGTERM: saved %s at epoch %d, step %d" % (self.path, trainer.current_epoch, trainer.global_step))
            trainer.should_stop = True


class Progress(Callback):
    """One log line per epoch on rank 0, visible in the unit's journal."""

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.is_global_zero:
            loss = trainer.callback_metrics.get("train_loss")
            log("epoch %d/%d loss=%.6f" % (trainer.current_epoch + 1, trainer.max_epochs, float(loss)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=4096)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--checkpoint-dir", default=os.environ.get("TORCHRUN_CHECKPOINT_DIR", "checkpoints"))
    parser.add_argument("--collective-timeout", type=int, default=int(os.environ.get("TORCHRUN_COLLECTIVE_TIMEOUT", "1800")),
                        help="seconds a collective waits for a peer before the job fails (default $TORCHRUN_COLLECTIVE_TIMEOUT)")
    parser.add_argument("--sleep-per-epoch", type=float, default=0.0, help="slow the job down (tests)")
    parser.add_argument("--stall-rank", type=int, default=-1,
                        help="this global rank stops at the end of epoch 1 for good while the others go on (tests: a hang)")
    args = parser.parse_args(argv)

    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    nodes = world // local_world
    accelerator = "gpu" if torch.cuda.is_available() else "cpu"
    log("joined: node %s, local rank %s, world size %d (%d node(s) x %d), %s, restart %s"
        % (os.environ.get("GROUP_RANK", "?"), os.environ.get("LOCAL_RANK", "?"), world, nodes, local_world, accelerator,
           os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")))

    torch.manual_seed(0)
    # Shared storage: Lightning's own checkpointing (global rank 0 writes, every rank reads).
    strategy = DDPStrategy if os.environ.get("TORCHRUN_SHARED_DIR") else NodeLocalDDP
    last = os.path.join(args.checkpoint_dir, "last.ckpt")
    # save_top_k=1: Lightning writes last.ckpt only in an epoch where it saved a top-k checkpoint.
    callbacks = [ModelCheckpoint(dirpath=args.checkpoint_dir, save_last=True, save_top_k=1), Progress(),
                 GracefulStop(last)]
    if args.sleep_per_epoch:
        class Sleep(Callback):
            def on_train_epoch_end(self, trainer, pl_module):
                time.sleep(args.sleep_per_epoch)
        callbacks.append(Sleep())
    if args.stall_rank >= 0:
        class Stall(Callback):
            def on_train_epoch_end(self, trainer, pl_module):
                if trainer.global_rank == args.stall_rank and trainer.current_epoch >= 1:
                    log("rank %d stalls (--stall-rank)" % args.stall_rank)
                    while True:
                        time.sleep(60)
        callbacks.append(Stall())
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=local_world,
        num_nodes=nodes,
        strategy=strategy(process_group_backend="nccl" if accelerator == "gpu" else "gloo",
                          timeout=timedelta(seconds=args.collective_timeout)),
        max_epochs=args.epochs,
        callbacks=callbacks,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=True,
    )
    model = Regression(args.features, args.lr)
    loader = DataLoader(synthetic(args.samples, args.features), batch_size=args.batch_size, shuffle=True)
    resumed = 0
    if os.path.exists(last):
        resumed = int(torch.load(last, map_location="cpu", weights_only=False).get("epoch", 0))
        log("resuming from %s (%d epoch(s) done)" % (last, resumed))
    trainer.fit(model, loader, ckpt_path=last if os.path.exists(last) else None)
    if trainer.is_global_zero:
        # A run resumed after its last epoch trains nothing: report the loss it was saved with.
        loss = float(trainer.callback_metrics.get("train_loss", model.loaded_loss))
        print("final: world_size=%d nodes=%d epochs=%d loss=%.6f resumed_after_epochs=%d"
              % (trainer.world_size, trainer.num_nodes, trainer.current_epoch, loss, resumed), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
