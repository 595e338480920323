"""The scatter plot a mixture trial logs at each eval: points on fixed axes with tick labels, and
the data's modes marked, so that a person sees at once which modes the generator missed."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from trainers.plots import MARGIN, MODE_RGB, scatter_png


def test_the_modes_are_marked_and_the_axes_labelled_at_whole_numbers():
    modes = np.array([[1.0, 0.0], [0.0, -1.0]])
    png = scatter_png(np.zeros((0, 2)), np.zeros((0, 2)), extent=1.5, size=320, modes=modes)
    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert image.shape == (320, 320, 3)
    side = 320 - MARGIN
    x = MARGIN + round((1.0 + 1.5) / 3.0 * (side - 1))  # the mode (1, 0) in the plot
    y = side - 1 - round(1.5 / 3.0 * (side - 1))
    assert tuple(image[y, x]) == MODE_RGB
    assert (image[side + 2:, MARGIN:] < 200).any()  # x tick labels under the plot
    assert (image[:side, :MARGIN] < 200).any()  # y tick labels left of it
