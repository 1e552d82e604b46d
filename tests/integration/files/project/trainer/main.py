"""Entry point: reads the project's config, builds the model from a sibling module, joins the
process group and averages its parameters once, as a DDP start would."""

import argparse
import pathlib

import torch
import torch.distributed as dist

from trainer.model import build

CONFIG = pathlib.Path(__file__).resolve().parent.parent / "configs" / "train.cfg"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tag", default="none")
    args = parser.parse_args()
    width = int(dict(line.split("=", 1) for line in CONFIG.read_text().split())["width"])
    dist.init_process_group("gloo")
    model = build(width)
    total = torch.tensor([float(sum(p.numel() for p in model.parameters()))])
    dist.all_reduce(total)
    print("project ok: rank %d of %d, width %d, parameters summed %d, tag %s"
          % (dist.get_rank(), dist.get_world_size(), width, int(total.item()), args.tag), flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
