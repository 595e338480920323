"""`gansweep check-trainer` on the example plug-in (examples/custom_trainer, copied into a
project folder of its own), on broken plug-ins, and on the built-in DCGAN: one PASS / FAIL line
per check of the trainer contract."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from orchestrator.cli import main


# -- check-trainer -------------------------------------------------------------------------------
def test_the_example_plugin_passes_check_trainer(project):
    result = CliRunner().invoke(main, ["check-trainer", "my_gan.cgan:ConditionalGAN",
                                       "--dataset", "my_gan.data:load_digits", "-p", "width=32"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert [line.split()[:2] for line in lines[1:-1]] == [
        ["PASS", name] for name in ("contract", "config", "data", "build", "train", "evaluate",
                                    "checkpoint", "resume", "generator")]
    # the free metrics of image data: FD in the classifier's features, class coverage and KL
    evaluate = next(line for line in lines if line.split()[1] == "evaluate")
    assert all(m in evaluate for m in ("eval/fd", "eval/class_coverage", "eval/class_kl"))
    assert lines[-1] == "9 passed, 0 failed; pbt: not supported (no MUTABLE)"


@pytest.mark.parametrize("broken, check, reason", [
    ("ForgetsItsRNG", "resume", "the chunk after a state_dict round trip differs: "),
    ("NaNLoss", "train", "train/g_loss is nan"),
    ("ForgetsTheClassCoordinate", "generator",
     "generator(torch.randn(16, z_dim=32)) raised RuntimeError"),
    ("TextMetric", "evaluate", "eval/quality is a str, not a float"),
    ("ClaimsAMetric", "evaluate", "eval/sharpness declared in METRICS but not returned by "
                                  "evaluate()"),
])
def test_a_broken_plugin_fails_check_trainer_on_the_right_line(project, broken, check, reason):
    result = CliRunner().invoke(main, ["check-trainer", f"broken_gans:{broken}",
                                       "--dataset", "my_gan.data:load_digits", "-p", "width=32"])
    assert result.exit_code == 1, result.output
    failed = [line for line in result.output.splitlines() if line.startswith("FAIL")]
    assert failed and failed[0].split()[1] == check, result.output
    assert reason in failed[0]


def test_check_trainer_passes_the_built_in_dcgan_on_digits():
    result = CliRunner().invoke(main, ["check-trainer", "dcgan", "--dataset", "digits",
                                       "-p", "base_width=8", "-p", "z_dim=8"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[-2].startswith("PASS  pbt         reconfigured lr_g, lr_d, beta1, beta2, "
                                "gp_weight, r1_weight, r1_every, d_steps, ema_decay (no other "
                                "valid value for augment); refuses n_blocks; a trainer built "
                                "with the new config resumes bitwise at step 6"), lines[-2]
    assert lines[-1] == "10 passed, 0 failed"


PBT_PLUGIN = '''\
from trainers.mlp_gan import MLPGANTrainer
from trainers.params import check_mutable_change


class KeepsItsOldRates(MLPGANTrainer):
    """Says PBT may change its learning rates, then trains on with the old ones."""

    def reconfigure(self, config):
        check_mutable_change(self.config, config, self.MUTABLE, "keeps")
'''


def test_check_trainer_fails_a_plugin_whose_reconfigure_ignores_the_new_config(project):
    (project / "pbt_gans.py").write_text(PBT_PLUGIN)
    result = CliRunner().invoke(main, ["check-trainer", "pbt_gans:KeepsItsOldRates",
                                       "-p", "g_width=16", "-p", "d_width=16"])
    assert result.exit_code == 1, result.output
    failed = [line for line in result.output.splitlines() if line.startswith("FAIL")]
    assert failed == ["FAIL  pbt         state_dict()['config'] after reconfigure has lr_g 0.001 "
                      "(not 0.00125): the checkpoint does not record the new config"]
    assert result.output.strip().splitlines()[-1] == "9 passed, 1 failed"
