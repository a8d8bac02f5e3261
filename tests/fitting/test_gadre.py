"""Approach 3 on the published runs of Gadre et al. (2024), imported through the store."""

from pathlib import Path

import pytest

from fitting.api import fit
from fitting.io import load_fit_inputs
from store import open_store
from store.importer import import_runs

GADRE_DIR = Path(__file__).resolve().parents[1] / "data" / "gadre2024"


@pytest.mark.slow
def test_gadre_c4_approach3(tmp_path):
    with open_store(f"sqlite:///{tmp_path / 'gadre.db'}") as store:
        result = import_runs(store, GADRE_DIR, "gadre-c4", gadre_dataset="c4_original")
        assert result.num_runs == 34
        frame = load_fit_inputs(store, "gadre-c4", "total", "6nd")
    report = fit(frame, 3, num_resamples=0)
    law = report.fit
    assert law.num_starts == 4500
    assert law.converged
    assert law.grad_norm < 1e-6
    # Exponents of published language-model fits lie in 0.2-0.4; a fit outside 0.1-0.6 is broken.
    assert 0.1 < law.alpha < 0.6
    assert 0.1 < law.beta < 0.6
    assert 1.0 < law.E < 2.5
    assert not [flag for flag in report.flags if flag.code in ("not_converged", "absurd_exponent")]
