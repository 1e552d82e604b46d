"""A user's script, not ours: it writes where training code writes, and says what worked.

~/.cache (torch.compile, Hugging Face, wandb, matplotlib), the XDG cache, an output folder the job
was given, and a system folder it was not. Joins the process group first, as any DDP script does.
"""

import os
import pathlib

import torch.distributed as dist


def attempt(path: pathlib.Path) -> str:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("written by rank %s\n" % os.environ.get("RANK"))
        return "ok"
    except OSError as error:
        return "refused (%s)" % error.strerror


def main() -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    tries = {
        "home-cache": pathlib.Path.home() / ".cache" / "user-tool" / ("rank%d" % rank),
        "xdg-cache": pathlib.Path(os.environ.get("XDG_CACHE_HOME", "/nonexistent")) / "other-tool" / ("rank%d" % rank),
        "outputs": pathlib.Path(os.environ.get("OUTPUTS", "/srv/outputs")) / ("rank%d.txt" % rank),
        "system": pathlib.Path("/opt/user-was-here-rank%d" % rank),
    }
    print("rank %d home=%s %s" % (rank, pathlib.Path.home(), " ".join("%s=%s" % (k, attempt(v)) for k, v in tries.items())), flush=True)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
