import math

import pytest

from sweeps.spec import SpecError, load_spec, parse_number, spec_from_dict

BASE = {
    "name": "unit",
    "data": "corpus",
    "budgets": [1e12, 3e12],
    "models": {"sizes": ["1M", "2M", "4M", "8M"]},
}


def write_yaml(tmp_path, text):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1e18", 1e18), ("150M", 150e6), ("7B", 7e9), ("2.5k", 2500.0), ("1T", 1e12), (3, 3.0)],
)
def test_parse_number_forms(text, expected):
    assert parse_number(text) == expected


def test_yaml_scientific_without_dot(tmp_path):
    path = write_yaml(
        tmp_path,
        "name: s\ndata: d\nbudgets: [1e18, 3e18]\nmodels: {sizes: [150M, 7B, 1e9, 400M]}\n",
    )
    spec = load_spec(path)
    assert spec.budget_values() == [1e18, 3e18]
    assert spec.models.sizes == [150_000_000, 7_000_000_000, 1_000_000_000, 400_000_000]


def test_unknown_key_names_path_and_value(tmp_path):
    path = write_yaml(
        tmp_path,
        "name: s\ndata: d\nbudgets: [1e12]\nmodels: {sizes: [1M], num_sises: 5}\n",
    )
    with pytest.raises(SpecError) as error:
        load_spec(path)
    message = str(error.value)
    assert "models.num_sises" in message
    assert "unknown key" in message
    assert "got 5" in message
    assert "\n" not in message


def test_bad_budget_names_index_and_value():
    with pytest.raises(SpecError, match=r"budgets\[1\].*got 'lots'"):
        spec_from_dict({**BASE, "budgets": [1e12, "lots"]})


def test_budget_range_is_log_spaced():
    spec = spec_from_dict({**BASE, "budgets": {"start": "1e12", "stop": "1e14", "num": 3}})
    assert spec.budget_values() == pytest.approx([1e12, 1e13, 1e14])


def test_budget_range_reversed_rejected():
    with pytest.raises(SpecError, match="stop 1e\\+11 is below start 1e\\+12"):
        spec_from_dict({**BASE, "budgets": {"start": 1e12, "stop": 1e11, "num": 3}})


def test_num_sizes_centered_on_optimum():
    spec = spec_from_dict({**BASE, "models": {"num_sizes": 5, "tokens_per_param": 20, "ratio_range": 16}})
    targets = spec.models.targets(1.2e13)
    n_opt = math.sqrt(1.2e13 / (6 * 20))
    assert len(targets) == 5
    assert targets[2] == pytest.approx(n_opt)
    assert targets[-1] / targets[0] == pytest.approx(16)


def test_sizes_and_num_sizes_exclusive():
    with pytest.raises(SpecError, match="set exactly one of 'sizes'"):
        spec_from_dict({**BASE, "models": {"sizes": ["1M"], "num_sizes": 4}})


def test_constant_lr_needs_value():
    with pytest.raises(SpecError, match="rule 'constant' needs 'value'"):
        spec_from_dict({**BASE, "lr": {"rule": "constant"}})


def test_tokens_per_step_multiple_of_seq_len():
    with pytest.raises(SpecError, match="tokens_per_step 1000 is not a multiple of seq_len 256"):
        spec_from_dict({**BASE, "tokens_per_step": 1000})


def test_fractional_gpus_accepted():
    spec = spec_from_dict({**BASE, "resources": {"num_cpus": 1, "num_gpus": 0.25}})
    assert spec.resources.num_gpus == 0.25


def test_negative_gpus_rejected():
    with pytest.raises(SpecError, match=r"resources.num_gpus: .*greater than or equal to 0 \(got -1"):
        spec_from_dict({**BASE, "resources": {"num_gpus": -1}})


def test_missing_file_named(tmp_path):
    with pytest.raises(SpecError, match="not found"):
        load_spec(tmp_path / "absent.yaml")


def test_examples_load():
    from pathlib import Path

    examples = sorted((Path(__file__).parents[2] / "sweeps" / "examples").glob("*.yaml"))
    assert examples
    for path in examples:
        spec = load_spec(path)
        assert len(spec.budget_values()) >= 3
