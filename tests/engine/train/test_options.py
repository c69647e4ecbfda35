"""The trainer's options: flip (true, false, "alternate"), shift_fill and tta are checked with
a TrainError naming the field, and a trainer applies them between steps."""

import pytest

from engine.data.augment import Augmentation
from engine.train.options import TrainError, TrainOptions
from engine.train.trainer import Trainer
from tests.builders import TINY_LAYERS, learnable_folder, open_folder, tiny_net


@pytest.mark.parametrize("options, field", [
    ({"flip": "yes"}, "flip"), ({"flip": 1}, "flip"), ({"flip": None}, "flip"),
    ({"flip": "Alternate"}, "flip"), ({"shift_fill": "edge"}, "shift_fill"),
    ({"shift_fill": 0}, "shift_fill"), ({"tta": "mirror"}, "tta"), ({"tta": ["flip"]}, "tta"),
])
def test_bad_values_are_refused_naming_the_field(options, field):
    with pytest.raises(TrainError) as info:
        TrainOptions(**options).check()
    assert info.value.field == field
    assert field in str(info.value) and "got" in str(info.value)


def test_good_values_and_the_augmentation_they_make():
    for flip in (True, False, "alternate"):
        for fill in ("zero", "reflect"):
            options = TrainOptions(flip=flip, shift=2, shift_fill=fill).check()
            assert options.augmentation == Augmentation(flip, 2, fill)
    for tta in ("none", "flip", "flip_translate"):
        assert TrainOptions(tta=tta).check().tta == tta
    assert TrainOptions().augmentation == Augmentation(True, 2, "zero")    # as before


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("options")
    return open_folder(learnable_folder(root / "photos"), root / "cache")


def test_a_trainer_applies_the_augmentation_and_tta_options(dataset):
    trainer = Trainer(tiny_net(TINY_LAYERS, seed=1), dataset,
                      {"method": "adam", "learning_rate": 0.01, "batch_size": 8},
                      TrainOptions(seed=1))
    trainer.step()
    settings = trainer.apply({"flip": "alternate", "shift_fill": "reflect", "tta": "flip"})
    assert settings["flip"] == "alternate" and settings["shift_fill"] == "reflect"
    assert trainer.batches.augment == Augmentation("alternate", 2, "reflect")
    trainer.step()
    result = trainer.evaluate_test()
    assert result["tta"] == "flip"
    with pytest.raises(TrainError) as info:
        trainer.apply({"tta": "sometimes", "learning_rate": 0.5})
    assert info.value.field == "tta" and trainer.settings() == settings
