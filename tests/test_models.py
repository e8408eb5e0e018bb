"""seglib.models: shapes and parameter counts computed by hand."""

import numpy as np
import pytest

from seglib import models


def test_tiny_unet_parameters_by_hand():
    # base 2, depth 1, 3 classes on RGB: down 3->2 (56) 2->2 (38); bottleneck 2->4 (76) 4->4 (148);
    # transpose 2x2 4->2 (34); after concat 4 channels: 4->2 (74) 2->2 (38); 1x1 2->3 (9): 473 in all
    model = models.unet((8, 8, 3), num_classes=3, base_filters=2, depth=1)
    assert model.count_params() == 56 + 38 + 76 + 148 + 34 + 74 + 38 + 9


def test_unet_output_is_a_distribution_per_pixel():
    model = models.unet((32, 64, 3), num_classes=8, base_filters=4, depth=3)
    probabilities = model.predict(np.random.default_rng(0).random((2, 32, 64, 3), np.float32), verbose=0)
    assert probabilities.shape == (2, 32, 64, 8)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    ({"input_shape": (30, 64, 3), "depth": 2}, "divisible by 2\\*\\*depth = 4"),
    ({"num_classes": 1}, "num_classes >= 2"),
])
def test_bad_configurations_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        models.unet(**kwargs)
