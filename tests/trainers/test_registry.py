"""Names a spec uses for trainers and datasets, and what they resolve to."""

import pytest

from trainers import DATASETS, Mixture, PluginError, dataset_kind, load_dataset, trainer_class
from trainers.registry import dataset_target, is_plugin, trainer_target
from trainers.scoring import data_kind


def test_names_resolve_to_built_ins_import_paths_or_errors():
    assert trainer_target("mlp_gan") == "mlp_gan"
    assert trainer_target("pkg.mod:Cls") == "pkg.mod:Cls" and is_plugin("pkg.mod:Cls")
    assert dataset_target("parquet:images.parquet") == "parquet:images.parquet"
    assert not is_plugin("parquet:images")  # a file, not a module named parquet
    with pytest.raises(PluginError, match="unknown trainer 'mlpgan': use a built-in"):
        trainer_target("mlpgan")
    with pytest.raises(PluginError, match=r"cannot import no_such_pkg.mod \(for no_such_pkg.mod"
                                          r":Trainer\): ModuleNotFoundError"):
        trainer_class("no_such_pkg.mod:Trainer")
    with pytest.raises(PluginError, match="trainers.base:Evaluation is not a gansweep trainer"):
        trainer_class("trainers.base:Evaluation")


def test_load_dataset_knows_none_and_names_the_known_on_a_typo():
    assert {"ring8", "grid25", "none"} <= set(DATASETS)
    assert load_dataset("none") is None
    assert isinstance(load_dataset("grid25"), Mixture)
    with pytest.raises(PluginError, match="unknown dataset 'ring9'.*ring8"):
        load_dataset("ring9")


def test_each_built_in_dataset_is_the_kind_its_entry_says():
    """The kind is known before loading (a spec is refused before anything is created): it must
    be the kind of what the loader returns."""
    for name, entry in DATASETS.items():
        assert dataset_kind(name) == entry.kind == data_kind(entry.load()), name
    assert dataset_kind("folder:~/pets") == "image" and dataset_kind("pkg.mod:load") is None
