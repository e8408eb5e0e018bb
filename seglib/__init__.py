"""seglib: the tested library behind the book "Semantic segmentation of street scenes".

Modules (import the one you need; none imports TensorFlow unless it must):

* :mod:`seglib.labels`     - the official Cityscapes label table and every lookup derived from it
* :mod:`seglib.masks`      - the four mask formats, polygons -> masks, 34 labels -> 8 categories
* :mod:`seglib.cityscapes` - the folder layout, and which dataset is used (real or generated)
* :mod:`seglib.synthetic`  - license-clean street scenes generated in the Cityscapes layout
* :mod:`seglib.viz`        - colourised masks, overlays, legends
* :mod:`seglib.profiles`   - the run profiles ``ci``, ``colab``, ``full``
"""

__version__ = "0.1.0"
