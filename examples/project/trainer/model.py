"""The model: a module the entry point imports from the package."""

import lightning as L
import torch
from torch import nn


class Regression(L.LightningModule):
    def __init__(self, width: int):
        super().__init__()
        self.layer = nn.Linear(width, 1)

    def training_step(self, batch, _index):
        x, y = batch
        loss = nn.functional.mse_loss(self.layer(x), y)
        self.log("loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)
