"""Run a function on ``world`` gloo processes on this machine (test helper).

``spawn_gloo(fn, world, out_dir)`` starts ``world`` processes, each of which
joins one gloo process group on a free loopback port, calls ``fn(rank,
world)`` and saves what it returns to ``out_dir/rank{rank}.pt``; the parent
returns the per-rank results in rank order. A worker's exception is written
to ``err{rank}.txt`` and fails the call with its traceback.
"""

import datetime
import os
import socket
import traceback

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, out_dir, fn, timeout_s):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    try:
        dist.init_process_group("gloo", rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=timeout_s))
        torch.save(fn(rank, world), os.path.join(out_dir, f"rank{rank}.pt"))
        dist.barrier()  # every rank done before any tears gloo down
    except Exception:  # pragma: no cover - surfaced by the parent
        with open(os.path.join(out_dir, f"err{rank}.txt"), "w") as f:
            f.write(traceback.format_exc())
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def spawn_gloo(fn, world, out_dir, timeout_s=30):
    """``[fn(0, world), ..., fn(world - 1, world)]``, each run in its own process."""
    try:
        mp.spawn(_worker, args=(world, free_port(), str(out_dir), fn, timeout_s),
                 nprocs=world, join=True)
    except mp.ProcessExitedException:
        # gloo's threads can abort a worker at interpreter exit ("terminate
        # called without an active exception", seen once in three CI runs)
        # after its results were written; a crash before that still fails
        if len(list(out_dir.glob("rank*.pt"))) != world:
            raise
    errs = [p.read_text() for p in out_dir.glob("err*.txt")]
    assert not errs, "\n".join(errs)
    return [torch.load(out_dir / f"rank{r}.pt") for r in range(world)]
