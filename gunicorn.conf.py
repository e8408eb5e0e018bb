"""gunicorn's settings for the web app (``gunicorn app:app``), read from the working directory by gunicorn itself.

gunicorn loads ``./gunicorn.conf.py`` when it starts, so ``gunicorn app:app`` run here, and App Service's
``gunicorn --bind=0.0.0.0 --timeout 600 app:app`` run in a folder that holds this file, get these settings;
command-line options and ``GUNICORN_CMD_ARGS`` override them. The values are ``seglib.webapp.GUNICORN_WORKERS``
and ``GUNICORN_THREADS`` (tests/test_hostile_webapp.py checks that they agree); why these, in
:mod:`seglib.webapp`'s docstring:

* ``gthread``, one worker: one copy of TensorFlow and the model per machine of two cores;
* 16 threads: twice the 8 prediction requests a worker admits (2 predicting, 6 waiting or uploading), so
  that ``/health``, the page and the quick 503s for everything beyond always find a thread. gthread waits for a
  new connection's first byte (5 s) and for kept-alive connections without holding a thread; a client slower
  than that holds one, and the app bounds how long (its upload deadline).

The timeouts stay gunicorn's: with ``gthread`` the worker's main loop, not a request, answers the arbiter's
``--timeout``, so it does not cut slow requests short; kept-alive connections wait in that loop, not in threads.
"""

worker_class = "gthread"
workers = 1
threads = 16
