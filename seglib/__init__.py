"""seglib: the tested library behind the book "Semantic segmentation of street scenes".

Modules (import the one you need). They run on any Keras backend (TensorFlow, JAX, PyTorch: ``KERAS_BACKEND``) and
import TensorFlow only when a TensorFlow-only function runs (``tf.data``, TFRecords, export, the web app's
predictor; see :mod:`seglib.backends`):

* :mod:`seglib.labels`     - the official Cityscapes label table and every lookup derived from it
* :mod:`seglib.masks`      - the four mask formats, polygons -> masks, 34 labels -> 8 categories
* :mod:`seglib.cityscapes` - the folder layout, and which dataset is used (real or generated)
* :mod:`seglib.synthetic`  - license-clean street scenes generated in the Cityscapes layout
* :mod:`seglib.prepare`    - category masks and downscaled copies of a dataset
* :mod:`seglib.augment`    - albumentations on image and mask together
* :mod:`seglib.data`       - tf.data, a Keras PyDataset and TFRecords, all giving the same batches
* :mod:`seglib.models`     - U-Net, simple U-Net, FCN-8 on VGG16, U-Net on pretrained encoders
* :mod:`seglib.losses`     - cross-entropy and dice losses that skip IGNORE (import before loading a saved model)
* :mod:`seglib.metrics`    - confusion matrix, IoU, Dice, and the official Cityscapes category IoU
* :mod:`seglib.train`      - fitting by run profile, saved runs, evaluation at full size
* :mod:`seglib.experiments` - the book's experiments: contenders, seeds, runs shared between chapters
* :mod:`seglib.results`    - results files (schema, checks), spreads over seeds, outcome sentences from numbers
* :mod:`seglib.features`   - classical per-pixel filter features and a logistic-regression baseline
* :mod:`seglib.predict`    - the one prediction path: image bytes -> category mask (notebooks, web app, endpoint)
* :mod:`seglib.webapp`     - the Flask web app (``app.py`` at the repository root exposes it for gunicorn)
* :mod:`seglib.export`     - SavedModel and TFLite exports, compared with the Keras model
* :mod:`seglib.viz`        - colourised masks, overlays, legends
* :mod:`seglib.profiles`   - the run profiles ``ci``, ``reference``, ``colab``, ``full``
* :mod:`seglib.bench`      - timing helpers shared by ``benchmarks/`` and the chapters
* :mod:`seglib.backends`   - which Keras backend runs, what needs TensorFlow, and a probe of each backend
"""

__version__ = "0.1.0"
