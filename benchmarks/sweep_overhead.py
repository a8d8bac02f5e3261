"""Time a sweep spends outside training, against the same runs called in a plain loop.

Both modes train the same short runs (one budget, five sizes, ten seeds: 50 runs) one at a time
with the same thread count and checkpoints. Training time is the sum of `RunResult.wall_s`
(the train loop, validation and checkpoints). Overhead is wall time minus training time, as a
fraction of wall time. In the loop it is model construction and corpus opening. The sweep adds
Ray start-up, task scheduling, event streaming and store writes.

Run with `python -m benchmarks.sweep_overhead [--quick]`; the last line is a JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

EXCERPT = Path(__file__).resolve().parents[1] / "tests" / "data" / "english_pd_excerpt.txt"
SEQ_LEN = 32
TOKENS_PER_STEP = 256


def build_spec(corpus: Path, folder: Path, num_seeds: int, steps_smallest: int):
    from model.corpus import Corpus
    from model.sizes import family_config
    from sweeps.spec import spec_from_dict

    vocab_size = Corpus.open(corpus).info.vocab_size
    base = family_config(32, 1, vocab_size, SEQ_LEN).num_params
    return spec_from_dict(
        {
            "name": "overhead",
            "data": str(corpus),
            "seq_len": SEQ_LEN,
            "tokens_per_step": TOKENS_PER_STEP,
            "budgets": [6.0 * base * TOKENS_PER_STEP * steps_smallest],
            "models": {"sizes": [base, int(base * 1.6), int(base * 2.5), int(base * 4), int(base * 6)]},
            "seeds": list(range(num_seeds)),
            "resources": {"num_cpus": 2},
            "storage": {"checkpoint_root": str(folder / "checkpoints")},
            "train": {"eval_batches": 2},
        }
    )


def time_loop(plan, corpus: Path, folder: Path) -> dict[str, float]:
    from model.train import TrainConfig, train_run

    start = time.perf_counter()
    train_s = 0.0
    for run in plan.runs:
        result = train_run(
            TrainConfig.from_dict(run.train_config), corpus, f"{folder}/loop/{run.run_id}.ckpt", num_threads=2
        )
        train_s += result.wall_s
    wall_s = time.perf_counter() - start
    return {"wall_s": wall_s, "train_s": train_s, "overhead_frac": (wall_s - train_s) / wall_s}


def time_sweep(spec, plan, folder: Path) -> dict[str, float]:
    import ray

    from store import open_store
    from sweeps.ray_tasks import start_ray
    from sweeps.runner import submit

    store = open_store(f"sqlite:///{folder / 'overhead.db'}")
    start = time.perf_counter()
    start_ray(None)
    ray_start_s = time.perf_counter() - start
    try:
        # Each run requests both CPUs, so Ray runs them one at a time like the loop, and the next
        # queued task starts while the driver is still writing the previous one.
        submit(spec, store, progress=False, plan=plan)
    finally:
        ray.shutdown()
    wall_s = time.perf_counter() - start
    train_s = float(store.runs(spec.name)["wall_s"].sum())
    return {
        "wall_s": wall_s,
        "train_s": train_s,
        "ray_start_s": ray_start_s,
        "overhead_frac": (wall_s - train_s) / wall_s,
        "overhead_frac_after_ray_start": (wall_s - ray_start_s - train_s) / (wall_s - ray_start_s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 runs of 20 steps or fewer instead of 50 longer runs.")
    parser.add_argument(
        "--steps-smallest",
        type=int,
        default=1500,
        help="Optimizer steps of the smallest model; the larger models get the same FLOPs (default 1500, "
        "about 10 s per run on a quiet 2-core machine).",
    )
    args = parser.parse_args()
    num_seeds, steps_smallest = (2, 20) if args.quick else (10, args.steps_smallest)

    from model.corpus import prepare_corpus
    from sweeps.plan import plan_sweep

    with tempfile.TemporaryDirectory(prefix="sweep-overhead-") as temp:
        folder = Path(temp)
        corpus = folder / "corpus"
        prepare_corpus(EXCERPT, corpus, 512, val_fraction=0.1, seed=0, licence="public domain")
        spec = build_spec(corpus, folder, num_seeds, steps_smallest)
        plan = plan_sweep(spec)
        loop = time_loop(plan, corpus, folder)
        print(f"loop:  {len(plan.runs)} runs, wall {loop['wall_s']:.1f} s, training {loop['train_s']:.1f} s, overhead {loop['overhead_frac']:.1%}")
        sweep = time_sweep(spec, plan, folder)
        print(
            f"sweep: {len(plan.runs)} runs, wall {sweep['wall_s']:.1f} s, training {sweep['train_s']:.1f} s, "
            f"Ray start {sweep['ray_start_s']:.1f} s, overhead {sweep['overhead_frac']:.1%} "
            f"({sweep['overhead_frac_after_ray_start']:.1%} after Ray start)"
        )
        figures = {
            "num_runs": len(plan.runs),
            "steps_total": sum(run.steps for run in plan.runs),
            "overhead_frac": sweep["overhead_frac"],
            "overhead_frac_after_ray_start": sweep["overhead_frac_after_ray_start"],
            "loop_overhead_frac": loop["overhead_frac"],
            "sweep_wall_s": sweep["wall_s"],
            "sweep_train_s": sweep["train_s"],
            "ray_start_s": sweep["ray_start_s"],
            "loop_wall_s": loop["wall_s"],
            "loop_train_s": loop["train_s"],
            "sweep_overhead_per_run_s": (sweep["wall_s"] - sweep["ray_start_s"] - sweep["train_s"]) / len(plan.runs),
        }
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
