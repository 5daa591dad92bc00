"""Cluster profiles and SLURM's answers, read without a cluster."""

import pytest

from benchmark.execution import jobs, profiles


def test_cluster_profiles_are_data_with_checked_keys(tmp_path):
    local = profiles.load("local", ["timeout_min=5", "setup=module load cuda"])
    assert local.partition == "debug" and local.timeout_min == 5 and local.setup == ["module load cuda"]
    assert local.submitit_parameters()["slurm_partition"] == "debug"
    custom = tmp_path / "mine.yaml"
    custom.write_text("partition: gpu\ngpus_per_node: 4\nsbatch: {exclude: node7}\n")
    assert profiles.load(str(custom)).sbatch == {"exclude": "node7"}
    with pytest.raises(ValueError, match="unknown cluster profile key 'gpus'"):
        custom.write_text("gpus: 4\n")
        profiles.load(str(custom))
    with pytest.raises(ValueError, match="cpus_per_task must be int"):
        profiles.load("local", ["cpus_per_task=many"])
    with pytest.raises(FileNotFoundError, match="no cluster profile 'nope'"):
        profiles.load("nope")


def test_job_states_read_array_ranges_and_cancel_reasons():
    rows = [["41_0", "COMPLETED"], ["41_[2-4%2]", "PENDING"], ["42", "CANCELLED by 0"], ["43_1", "RUNNING"]]
    assert jobs._parse(rows) == {"41_0": "COMPLETED", "41_2": "PENDING", "41_3": "PENDING", "41_4": "PENDING",
                                 "42": "CANCELLED", "43_1": "RUNNING"}
