"""Benchmark: Approach 3 from the 4,500-start grid, batched, against a scipy loop over the same starts.

Run with `python -m benchmarks.fit_approach3` (250 runs, 4,500 starts, 1,000 bootstrap
resamples) or `--quick`. The scipy loop runs on a random subset of the starts (`--loop-starts`, 300 by
default; all of them with --quick) and its time is extrapolated to all starts, as the
output states. Prints both times, their ratio and both final objectives; the last
line is one JSON object with the figures, `speedup` among them (loop time over batched time).
"""

from __future__ import annotations

import argparse
import json
import os
import time

# One BLAS thread for both sides, because numpy's dot products in the scipy loop are too small to
# gain from threads. On a shared machine, BLAS threads waiting on each other slowed the loop by
# 10x or more, which would flatter the speedup.
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 runs, every 10th start, 100 resamples.")
    parser.add_argument("--runs", type=int, default=None, help="Synthetic runs [default: 250, or 100 with --quick].")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads before fitting (the solver uses 1 of them).")
    parser.add_argument(
        "--loop-starts", type=int, default=None,
        help="Run the scipy loop on this many starts drawn at random from the same starts and "
        "extrapolate its time to all of them [default: 300, or all with --quick].",
    )
    args = parser.parse_args()

    import torch

    from fitting.api import resample_weights
    from fitting.approach3 import bootstrap_approach3, chinchilla_grid, fit_approach3_with_candidates, polish
    from fitting.conventions import prepare_fit_data
    from fitting.simulate import simulate_random_runs

    torch.set_num_threads(args.threads)
    num_runs = args.runs or (100 if args.quick else 250)
    starts = chinchilla_grid()[::10] if args.quick else chinchilla_grid()
    num_resamples = 100 if args.quick else 1000
    data = prepare_fit_data(simulate_random_runs(num_runs, noise=0.01, seed=0), "total", "6nd")
    log_n, log_d, log_loss = np.log(data.num_params), np.log(data.num_tokens), np.log(data.loss)
    print(f"{num_runs} runs, {starts.shape[0]} starts, {num_resamples} bootstrap resamples, "
          f"torch.set_num_threads({args.threads}) (the batched solver uses 1), {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}")

    began = time.perf_counter()
    law, candidates = fit_approach3_with_candidates(data, starts=starts)
    batched_s = time.perf_counter() - began
    print(f"batched fit: {batched_s:.2f} s, objective {law.objective:.12g}, gradient norm {law.grad_norm:.3g}")

    began = time.perf_counter()
    weights = resample_weights(data, 3, num_resamples, np.random.default_rng(0))
    samples = bootstrap_approach3(data, weights, candidates, rng=np.random.default_rng(1))
    bootstrap_s = time.perf_counter() - began
    converged_share = float(np.mean(samples["converged"]))
    print(f"bootstrap: {bootstrap_s:.2f} s, {converged_share:.1%} of resamples converged, "
          f"median gradient norm {np.median(samples['grad_norm']):.3g}")

    loop_count = starts.shape[0] if args.loop_starts is None and args.quick else (args.loop_starts or 300)
    loop_count = min(loop_count, starts.shape[0])
    loop_starts = starts[np.sort(np.random.default_rng(2).choice(starts.shape[0], loop_count, replace=False))]
    began = time.perf_counter()
    reference = np.inf
    for start in loop_starts:
        result = polish(start, log_n, log_d, log_loss)
        if np.isfinite(result.fun):
            reference = min(reference, float(result.fun))
    measured_loop_s = time.perf_counter() - began
    per_start_s = measured_loop_s / loop_count
    loop_s = per_start_s * starts.shape[0]
    if loop_count == starts.shape[0]:
        print(f"scipy L-BFGS-B loop over the same {loop_count} starts: {loop_s:.2f} s "
              f"({per_start_s * 1e3:.1f} ms per start), objective {reference:.12g}")
    else:
        print(f"scipy L-BFGS-B loop over {loop_count} of the {starts.shape[0]} starts, drawn at random: "
              f"{measured_loop_s:.2f} s measured, {per_start_s * 1e3:.1f} ms per start, "
              f"EXTRAPOLATED to all {starts.shape[0]} starts: {loop_s:.1f} s; best objective of "
              f"the measured starts {reference:.12g}")

    speedup = loop_s / batched_s
    print(f"speedup {speedup:.1f}x; fit plus bootstrap {batched_s + bootstrap_s:.1f} s; "
          f"objective difference (ours - loop) {law.objective - reference:.3g}")
    print(json.dumps({
        "benchmark": "fit_approach3",
        "num_runs": num_runs,
        "num_starts": int(starts.shape[0]),
        "num_resamples": num_resamples,
        "batched_fit_s": batched_s,
        "bootstrap_s": bootstrap_s,
        "fit_plus_bootstrap_s": batched_s + bootstrap_s,
        "scipy_loop_s": loop_s,
        "scipy_loop_extrapolated": bool(loop_count < starts.shape[0]),
        "scipy_loop_starts_measured": int(loop_count),
        "scipy_loop_per_start_s": per_start_s,
        "load_average_1min": os.getloadavg()[0],
        "speedup": speedup,
        "objective": law.objective,
        "scipy_loop_objective": reference,
        "objective_no_worse": bool(law.objective <= reference * (1 + 1e-9)),
        "bootstrap_converged_share": converged_share,
    }))


if __name__ == "__main__":
    main()
