"""jax_ssl.compare: the runs it plans, the table and the chart it writes."""
import json
import os

import pytest

from jax_ssl import compare

FEW_STEPS = (("train.num_steps", 2), ("train.warmup_steps", 1), ("train.batch_size", 16),
             ("data.image_size", 16), ("eval.linear_epochs", 1), ("eval.max_train_examples", 512))


def test_two_configs_of_a_few_steps_write_the_table_and_the_chart(tmp_path):
  configs = ["configs/simclr_tiny.py", "configs/byol_tiny.py"]
  records = compare.compare(configs, str(tmp_path), seeds=(0,), common=FEW_STEPS)
  assert [(r["name"], r["source"], r["seed"]) for r in records] == [
      ("simclr_tiny", "builtin:mnist", 0), ("byol_tiny", "builtin:mnist", 0)]
  for r in records:
    assert "error" not in r and 0 <= r["linear_top1"] <= 1 and 0 <= r["baseline_knn_top1"] <= 1
    assert 0 < r["cpu_seconds"]
  table = (tmp_path / "comparison.md").read_text().splitlines()
  assert table[0].startswith("| source | run | linear top-1 | random init | gain")
  rows = [line for line in table[2:] if line.startswith("| builtin:mnist")]
  assert [row.split(" | ")[1] for row in rows] == ["simclr_tiny", "byol_tiny"]
  assert f"{records[0]['linear_top1']:.3f}" in rows[0]
  assert (tmp_path / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  lines = (tmp_path / "results.jsonl").read_text().splitlines()
  assert [json.loads(line) for line in lines] == records
  # A finished run is read back, not run again.
  os.remove(tmp_path / "comparison.md")
  assert compare.compare(configs, str(tmp_path), seeds=(0,), common=FEW_STEPS) == records
  assert (tmp_path / "comparison.md").exists()


def test_a_sweep_plans_one_run_per_value_source_and_seed():
  runs = compare.plan(["configs/simclr_tiny.py"], ["builtin:mnist", "builtin:colour_digits"],
                      [0, 1], "simclr.temperature=0.1,0.5")
  assert [(v.name, s, seed) for v, s, seed in runs][:3] == [
      ("simclr.temperature=0.1", "builtin:mnist", 0),
      ("simclr.temperature=0.1", "builtin:mnist", 1),
      ("simclr.temperature=0.5", "builtin:mnist", 0)]
  assert len(runs) == 8 and runs[0][0].overrides == (("simclr.temperature", 0.1),)


def test_the_spread_over_seeds_is_the_sample_standard_deviation():
  records = [{"name": "a", "source": "s", "seed": seed, "seconds": 60.0, "cpu_seconds": cpu,
              "linear_top1": value, "baseline_linear_top1": 0.1}
             for seed, value, cpu in [(0, 0.5, 90.0), (1, 0.7, 120.0)]]
  row = compare.summarise(records)[("s", "a")]
  assert row["linear_top1"] == pytest.approx((0.6, 2 ** 0.5 * 0.1))
  table = compare.markdown_table({("s", "a"): row})
  assert "| s | a | 0.600 ± 0.141 | 0.100 ± 0.000 | +50.0 ✓ | – | – | 2 | 1.0 | 2.0 |" in table
  # The mark's threshold is the caller's.
  assert "+50.0 |" in compare.markdown_table({("s", "a"): row}, gain_points=60)


def test_a_gain_carries_the_standard_error_of_its_test_set():
  records = [{"name": "a", "source": "s", "seed": 0, "seconds": 60.0, "linear_top1": 0.2,
              "baseline_linear_top1": 0.1, "test_images": 400}]
  table = compare.markdown_table(compare.summarise(records))
  # 100 * sqrt(0.2 * 0.8 / 400 + 0.1 * 0.9 / 400) = 2.5 points
  assert "| +10.0 ± 2.5 ✓ |" in table and "standard error" in table


def test_the_stages_probed_get_a_table_with_the_best_stage():
  stages = {"linear_top1_layer1": 0.8, "baseline_linear_top1_layer1": 0.85,
            "linear_top1_layer2": 0.9, "baseline_linear_top1_layer2": 0.7}
  records = [{"name": "a", "source": "s", "seed": 0, "seconds": 60.0, "linear_top1": 0.7,
              "baseline_linear_top1": 0.6, **stages},
             {"name": "b", "source": "s", "seed": 0, "seconds": 60.0, "linear_top1": 0.7}]
  table = compare.markdown_table(compare.summarise(records))
  assert "| source | run | layer1 | layer2 | best |" in table
  assert "| s | a | 0.800 (0.850) | 0.900 (0.700) | layer2 |" in table
  assert "| s | b |" not in table.split("by ResNet stage")[1]
  assert "by ResNet stage" not in compare.markdown_table(compare.summarise(records[1:]))


@pytest.mark.parametrize("args,message", [
    (dict(sweep="simclr.temperature"), "expected field=v1,v2"),
    (dict(sweep="simclr.temperatur=0.1"), "does not exist"),
    (dict(common=(("train.num_steps", "many"),)), "cannot be 'many'"),
])
def test_bad_arguments_are_named_before_any_run(tmp_path, args, message):
  with pytest.raises(ValueError, match=message):
    compare.compare(["configs/simclr_tiny.py"], str(tmp_path), **args)
  assert not (tmp_path / "runs").exists()
