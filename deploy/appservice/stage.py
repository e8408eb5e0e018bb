"""Stage the folder that Azure App Service runs: ``app.py``, ``gunicorn.conf.py``, ``seglib/``, a slim
``requirements.txt`` and, in local mode, the model.

Reads:  the repository's ``app.py``, ``gunicorn.conf.py``, ``seglib/`` and ``requirements.txt`` (the pins), and
        ``--model`` if given.
Writes: ``--output`` (which must be empty or absent)::

    app.py               the Flask app; App Service starts `gunicorn --bind=0.0.0.0 --timeout 600 app:app`
    gunicorn.conf.py     gunicorn reads it from the app's folder: gthread, 1 worker, 16 threads
    seglib/              the library, importable from the app's folder (no pip install of the repository)
    requirements.txt     what App Service's build (Oryx) pip-installs, pinned as in the repository
    model/model.keras    only with --model: the app predicts itself (app setting SEGLIB_MODEL=model/model.keras)

Two modes, chosen by ``--model``:

* **endpoint** (no ``--model``): the app sends uploads server-side to the Azure ML endpoint (app settings
  ``SEGLIB_ENDPOINT_URL`` and ``SEGLIB_ENDPOINT_KEY``); no TensorFlow, a small and fast-starting app;
* **local** (``--model path.keras``): the app loads the model itself, so TensorFlow is installed too.

Example::

    python deploy/appservice/stage.py --output /tmp/webapp
    cd /tmp/webapp && az webapp up --runtime PYTHON:3.11 --sku B1 --name <app-name>
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

__all__ = ["REPOSITORY", "ENDPOINT_PACKAGES", "LOCAL_PACKAGES", "MODEL_SETTING", "pinned_requirements", "stage",
           "main"]

REPOSITORY = Path(__file__).resolve().parents[2]
#: What the web app imports when it predicts through the endpoint (flask, images, the sample frames' reader)
#: plus the server App Service starts.
ENDPOINT_PACKAGES = ("flask", "gunicorn", "numpy", "pillow", "opencv-python-headless")
#: Predicting in the app itself adds seglib's prediction path (TensorFlow, and seglib.data's imports).
LOCAL_PACKAGES = ENDPOINT_PACKAGES + ("tensorflow", "keras", "albumentations", "scipy", "matplotlib")
#: The app setting (relative to the app's folder, App Service's working directory) naming the staged model.
MODEL_SETTING = "model/model.keras"

_PIN = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)==(\S+)$")


def pinned_requirements(requirements: str | Path, names: tuple[str, ...]) -> list[str]:
    """The ``name==version`` lines of ``requirements`` for ``names``, in that order; a clear error for a name the
    file does not pin."""
    pins = {}
    for line in Path(requirements).read_text().splitlines():
        match = _PIN.match(line.split("#")[0].strip())
        if match:
            pins[match[1].lower()] = line.strip()
    missing = [name for name in names if name.lower() not in pins]
    if missing:
        raise ValueError(f"{requirements} pins no version of {', '.join(missing)}")
    return [pins[name.lower()] for name in names]


def stage(output: str | Path, model: str | Path | None = None, repository: Path = REPOSITORY) -> Path:
    """Write the App Service folder to ``output`` (see the module's docstring); returns it."""
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise FileExistsError(f"{output} is a file: stage into a new folder")
    if output.exists() and any(output.iterdir()):
        raise FileExistsError(f"{output} is not empty: stage into a new folder")
    if model is not None and (Path(model).suffix != ".keras" or not Path(model).is_file()):
        raise FileNotFoundError(f"{model} is not a .keras model file")
    output.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(repository / "app.py", output / "app.py")
    shutil.copyfile(repository / "gunicorn.conf.py", output / "gunicorn.conf.py")
    shutil.copytree(repository / "seglib", output / "seglib", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    packages = LOCAL_PACKAGES if model is not None else ENDPOINT_PACKAGES
    lines = pinned_requirements(repository / "requirements.txt", packages)
    header = f"# staged by deploy/appservice/stage.py ({'local model' if model else 'Azure ML endpoint'} mode)"
    (output / "requirements.txt").write_text("\n".join([header, *lines]) + "\n")
    if model is not None:
        (output / MODEL_SETTING).parent.mkdir()
        shutil.copyfile(model, output / MODEL_SETTING)
    return output


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Stage the folder Azure App Service runs (app.py, seglib/, "
                                                 "requirements.txt, and optionally the model).")
    parser.add_argument("--output", type=Path, required=True, help="an empty or absent folder")
    parser.add_argument("--model", type=Path, default=None,
                        help="a .keras model to predict with in the app (default: none, predict on the endpoint)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        folder = stage(args.output, args.model)
    except (FileExistsError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    mode = f"local model (app setting SEGLIB_MODEL={MODEL_SETTING})" if args.model else \
        "endpoint (app settings SEGLIB_ENDPOINT_URL and SEGLIB_ENDPOINT_KEY)"
    print(f"staged {folder} for App Service, {mode}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
