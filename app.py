"""The web app, as Azure App Service (Linux, Python) starts it: ``gunicorn --bind=0.0.0.0 --timeout 600 app:app``.

Run it locally the same way, on loopback (gunicorn reads ``gunicorn.conf.py`` from the working directory: one
``gthread`` worker with 16 threads)::

    SEGLIB_MODEL=path/to/final.keras gunicorn --bind 127.0.0.1:8000 app:app

Importing this module is cheap (no TensorFlow): each gunicorn worker loads the model on its first request, after
gunicorn has forked it. Settings are environment variables (App Service "app settings"): ``SEGLIB_MODEL`` (default:
the newest U-Net chapter 9 trained), ``SEGLIB_ENDPOINT_URL`` and ``SEGLIB_ENDPOINT_KEY`` (predict on the Azure ML
endpoint instead of locally; checked here, so a malformed URL or a key with a line break inside stops the app at
startup with a message naming the setting), ``SEGLIB_MAX_UPLOAD_BYTES``, ``SEGLIB_MAX_PIXELS`` (default: two
Cityscapes frames), ``SEGLIB_MAX_CONCURRENT_PREDICTIONS`` (default 2 per worker),
``SEGLIB_MAX_WAITING_PREDICTIONS`` (prediction requests a worker takes on beyond those, default 6: one more gets
503 with ``Retry-After`` at once) and ``SEGLIB_UPLOAD_TIMEOUT`` (seconds an upload may take, default 120: then
408); see :mod:`seglib.webapp`.

Sample frames: the page offers the first validation frames of ``CITYSCAPES_DATASET`` if it is set, else of the run
profile's generated dataset (``SEGLIB_PROFILE``, under ``SEGLIB_DATA``), the same frames and ids the chapters use.
If that dataset is missing, only its validation split is generated when the app is created (8 frames in the ci
profile, 500 in the full one), not the train and test splits a chapter would generate; a dataset that exists is
only read (:func:`seglib.datasets.samples_root`).

Workers and threads (``gunicorn.conf.py``, the same as ``seglib.webapp.GUNICORN_WORKERS``/``GUNICORN_THREADS``):
on a 2-core machine one worker holds one copy of TensorFlow and the model, whose own thread pool already uses both
cores. Its 16 threads are twice the 8 prediction requests it admits, so ``/health`` (App Service's health probe),
the page and the quick 503s beyond capacity always find a thread, even while admitted clients upload slowly or
wait for a prediction slot; why gthread and not an async worker, in :mod:`seglib.webapp`. App Service's command
sets only the bind address and the timeout, so gunicorn takes the rest from ``gunicorn.conf.py`` when it is in
the deployed folder; otherwise set ``GUNICORN_CMD_ARGS="--workers 1 --threads 16"`` as an app setting (gunicorn's
default is one worker with one thread). An older ``GUNICORN_CMD_ARGS`` with ``--threads 4`` overrides the file:
remove it.
"""

from seglib.webapp import create_app

app = create_app()
