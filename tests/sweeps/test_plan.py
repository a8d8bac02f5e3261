import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from model.sizes import family_config
from sweeps.plan import PlanError, compute_run_id, plan_sweep
from sweeps.spec import spec_from_dict

VOCAB_SIZE = 256
SEQ_LEN = 32


def smallest_params() -> int:
    return family_config(32, 1, VOCAB_SIZE, SEQ_LEN).num_params


def tiny_spec(**changes):
    base = smallest_params()
    data = {
        "name": "plan-unit",
        "data": "absent-corpus",
        "vocab_size": VOCAB_SIZE,
        "seq_len": SEQ_LEN,
        "tokens_per_step": 256,
        "budgets": [2e9, 6e9],
        "models": {"sizes": [base, int(base * 1.8), int(base * 3), int(base * 5)]},
        "lr": {"rule": "constant", "value": 3e-3},
    }
    data.update(changes)
    return spec_from_dict(data)


def test_tokens_follow_six_nd():
    plan = plan_sweep(tiny_spec())
    assert len(plan.runs) == 8
    for run in plan.runs:
        ideal = run.budget_flops / (6 * run.num_params)
        assert abs(run.num_tokens - ideal) <= run.batch_size * run.seq_len / 2
        assert run.num_tokens == run.steps * 256
        assert run.compute_flops_6nd == pytest.approx(6 * run.num_params * run.num_tokens)
        assert run.tokens_per_param == pytest.approx(run.num_tokens / run.num_params)
        assert run.train_config["num_tokens"] == run.num_tokens


def test_run_ids_unique_and_stable():
    plan = plan_sweep(tiny_spec())
    ids = [run.run_id for run in plan.runs]
    assert len(set(ids)) == len(ids)
    again = plan_sweep(tiny_spec())
    assert [run.run_id for run in again.runs] == ids


def test_run_id_same_in_other_process():
    run = plan_sweep(tiny_spec()).runs[0]
    code = (
        "import json, sys; from sweeps.plan import compute_run_id; "
        "config = json.loads(sys.stdin.read()); print(compute_run_id('plan-unit', 'absent-corpus', config))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], input=json.dumps(run.train_config), capture_output=True, text=True, check=True
    )
    assert output.stdout.strip() == run.run_id
    assert compute_run_id("other", "absent-corpus", run.train_config) != run.run_id


def test_run_id_changes_with_seed():
    plan = plan_sweep(tiny_spec(seeds=[0, 1]))
    assert len(plan.runs) == 16
    assert len({run.run_id for run in plan.runs}) == 16


def test_less_than_one_step_rejected():
    base = smallest_params()
    spec = tiny_spec(models={"sizes": [base, 2 * base, 4 * base, 400 * base]})
    with pytest.raises(PlanError) as error:
        plan_sweep(spec)
    message = str(error.value)
    assert "budget 2e+09 FLOPs" in message
    assert "fewer than one" in message
    assert "raise the budget to at least" in message


def test_too_few_sizes_rejected():
    base = smallest_params()
    spec = tiny_spec(models={"sizes": [base, 2 * base, 4 * base]})
    with pytest.raises(PlanError, match=r"budget 2e\+09 FLOPs has 3 distinct model sizes .* fewer than 4"):
        plan_sweep(spec)


def test_num_sizes_below_smallest_dropped_then_rejected():
    spec = tiny_spec(models={"num_sizes": 5, "tokens_per_param": 20, "ratio_range": 8})
    with pytest.raises(PlanError, match="distinct model sizes"):
        plan_sweep(spec)


def test_max_total_flops_rejected():
    with pytest.raises(PlanError, match=r"costs .* FLOPs .*above --max-total-flops 1e\+09"):
        plan_sweep(tiny_spec(), max_total_flops=1e9)


def test_missing_corpus_without_vocab_rejected():
    spec = tiny_spec(vocab_size=None)
    with pytest.raises(PlanError, match="corpus 'absent-corpus' not found: prepare it"):
        plan_sweep(spec)


def test_default_lr_follows_kaplan():
    from model.train_config import kaplan_lr

    plan = plan_sweep(tiny_spec(lr={"rule": "default"}))
    for run in plan.runs:
        assert run.lr == pytest.approx(kaplan_lr(run.num_non_embedding_params))


def test_power_law_lr():
    plan = plan_sweep(tiny_spec(lr={"rule": "power_law", "value": 1e-3, "ref_params": 1e5, "exponent": 0.5}))
    for run in plan.runs:
        assert run.lr == pytest.approx(1e-3 * (run.num_params / 1e5) ** -0.5)


def test_given_throughput_sets_estimates():
    plan = plan_sweep(tiny_spec(), flops_per_s=1e9)
    assert plan.throughput_source == "given"
    for run in plan.runs:
        assert run.est_time_s == pytest.approx(run.compute_flops / 1e9)


def test_measured_throughput_positive():
    plan = plan_sweep(tiny_spec(), measure=True)
    assert plan.throughput_source == "measured"
    assert plan.flops_per_s > 0


def test_store_row_holds_train_config():
    from model.train_config import TrainConfig

    run = plan_sweep(tiny_spec()).runs[0]
    row = run.store_row("absent-corpus")
    config = TrainConfig.from_dict(row["config"])
    assert config.num_tokens == run.num_tokens
    assert row["conventions"]["checkpoint_url"] == run.checkpoint_url


def write_spec(tmp_path, spec):
    import yaml

    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec.model_dump(mode="json")))
    return path


def test_cli_plan_json(tmp_path):
    from scalelab.cli import app

    path = write_spec(tmp_path, tiny_spec())
    result = CliRunner().invoke(app, ["sweep", "plan", str(path), "--json", "--no-measure"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert len(plan["runs"]) == 8
    assert plan["throughput_source"] == "estimate"


def test_cli_plan_table(tmp_path):
    from scalelab.cli import app

    path = write_spec(tmp_path, tiny_spec())
    result = CliRunner().invoke(app, ["sweep", "plan", str(path), "--flops-per-s", "1e9"])
    assert result.exit_code == 0, result.output
    assert "plan-unit" in result.output
    assert "C 6ND" in result.output


def test_cli_plan_error_exits_2(tmp_path):
    path = write_spec(tmp_path, tiny_spec())
    result = subprocess.run(
        [sys.executable, "-m", "scalelab.cli", "sweep", "plan", str(path), "--no-measure", "--max-total-flops", "1e9"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: sweep 'plan-unit' costs")


def test_repeated_corpus_warns_and_records_epochs(tiny_corpus):
    from model.corpus import Corpus

    info = Corpus.open(tiny_corpus).info
    base = family_config(32, 1, info.vocab_size, SEQ_LEN).num_params
    # The smallest model trains on about 1.5 times the corpus's training tokens.
    budget = 6.0 * base * info.num_tokens_train * 1.5
    spec = tiny_spec(
        data=str(tiny_corpus),
        vocab_size=None,
        budgets=[budget],
        models={"sizes": [base, int(base * 1.6), int(base * 2.5), int(base * 4)]},
    )
    plan = plan_sweep(spec)
    smallest = plan.runs[0]
    assert smallest.epochs == pytest.approx(smallest.num_tokens / info.num_tokens_train)
    assert smallest.epochs > 1
    assert any(smallest.run_id in warning and "repeats the corpus" in warning for warning in plan.warnings)
    assert plan.to_dict()["runs"][0]["epochs"] == smallest.epochs


def test_vocab_mismatch_rejected(tiny_corpus):
    spec = tiny_spec(data=str(tiny_corpus), vocab_size=999)
    with pytest.raises(PlanError, match="vocab_size 999 in the spec differs from the corpus"):
        plan_sweep(spec)
