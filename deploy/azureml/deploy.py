"""Deploy the book's U-Net to an Azure ML managed online endpoint with the SDK v2 (``azure-ai-ml``).

Every setting lives in the YAML files beside this script (``endpoint.yml``, ``deployment.yml``, ``conda.yaml``),
the same files the CLI v2 takes (``az ml online-endpoint create -f ...``). This script loads them with the SDK's
own loaders, adds the one thing they cannot hold, the model file of this machine, and then:

1. creates or updates the endpoint (``auth_mode: key``);
2. registers the model from a folder holding one ``model.keras`` (``score.py`` finds it under
   ``AZUREML_MODEL_DIR``) and the environment (base image + ``conda.yaml``);
3. creates or updates the deployment (code folder = the repository root, filtered by ``.amlignore``), then routes
   100 % of the traffic to it;
4. sends one PNG through ``ml_client.online_endpoints.invoke`` and prints the answer's shares, then the
   deployment's container logs (``get_logs``).

``--dry-run`` builds every entity and prints it, with the list of files the code upload would hold, without
contacting Azure (no credential is even created): the tests run it. ``--delete`` deletes the endpoint and its
deployments: **a deployed endpoint bills its VMs every hour until deleted**.

The workspace comes from ``--subscription``/``--resource-group``/``--workspace`` or the environment variables
``AZURE_SUBSCRIPTION_ID``, ``AZURE_RESOURCE_GROUP``, ``AZUREML_WORKSPACE_NAME``; the credential from
:class:`azure.identity.DefaultAzureCredential` (``az login`` locally, a managed identity or OIDC in CI). Keys are
fetched at run time and never printed or written.

Example::

    python deploy/azureml/deploy.py --dry-run
    python deploy/azureml/deploy.py --resource-group book-rg --workspace book-ws --endpoint-name seg-$RANDOM
    python deploy/azureml/deploy.py --resource-group book-rg --workspace book-ws --endpoint-name seg-1234 --delete
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parents[1]
try:
    import seglib  # noqa: F401
except ImportError:  # run from a plain checkout without `pip install -e .`
    sys.path.insert(0, str(REPOSITORY))

__all__ = ["ENDPOINT_YAML", "DEPLOYMENT_YAML", "JOB_YAML", "MODEL_NAME", "WORKSPACE_ENV", "Plan", "stage_model",
           "build_plan", "code_files", "upload_files", "describe", "request_body", "deploy", "delete", "main"]

ENDPOINT_YAML = HERE / "endpoint.yml"
DEPLOYMENT_YAML = HERE / "deployment.yml"
JOB_YAML = HERE / "train-job.yml"
MODEL_NAME = "street-scenes-unet"
MODEL_FILE = "model.keras"
#: argument -> environment variable that can give it instead
WORKSPACE_ENV = {"subscription": "AZURE_SUBSCRIPTION_ID", "resource_group": "AZURE_RESOURCE_GROUP",
                 "workspace": "AZUREML_WORKSPACE_NAME"}


@dataclass
class Plan:
    """The Azure ML entities of one deployment, built offline."""

    endpoint: object      # azure.ai.ml.entities.ManagedOnlineEndpoint
    deployment: object    # azure.ai.ml.entities.ManagedOnlineDeployment
    model: object         # azure.ai.ml.entities.Model (a local folder, registered by deploy())
    environment: object   # azure.ai.ml.entities.Environment (image + conda.yaml)


def stage_model(model_path: str | os.PathLike, folder: str | os.PathLike) -> Path:
    """Copy the ``.keras`` file to ``folder/<MODEL_NAME>/model.keras`` and return that model folder: the folder
    is what gets registered, so the endpoint sees ``AZUREML_MODEL_DIR/<MODEL_NAME>/model.keras``."""
    model_path = Path(model_path)
    if model_path.suffix != ".keras" or not model_path.is_file():
        raise FileNotFoundError(f"{model_path} is not a .keras model file (train one with chapter 9 or "
                                f"data_scripts/train.py)")
    target = Path(folder) / MODEL_NAME
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model_path, target / MODEL_FILE)
    return target


def build_plan(model_folder: str | os.PathLike, endpoint_name: str | None = None,
               instance_type: str | None = None) -> Plan:
    """The endpoint and deployment from the YAML files, with the model replaced by ``model_folder``."""
    from azure.ai.ml import load_online_deployment, load_online_endpoint
    from azure.ai.ml.constants import AssetTypes
    from azure.ai.ml.entities import Model

    endpoint = load_online_endpoint(ENDPOINT_YAML)
    deployment = load_online_deployment(DEPLOYMENT_YAML)
    if endpoint_name:
        endpoint.name = endpoint_name
    deployment.endpoint_name = endpoint.name
    if instance_type:
        deployment.instance_type = instance_type
    model = Model(name=MODEL_NAME, path=str(model_folder), type=AssetTypes.CUSTOM_MODEL,
                  description="Chapter 9's U-Net: 8 Cityscapes categories (a folder holding model.keras)")
    deployment.model = model
    return Plan(endpoint, deployment, model, deployment.environment)


def code_files(deployment) -> list[str]:
    """The files the deployment's code upload holds (:func:`upload_files` of its code folder), sorted."""
    code = (Path(deployment.base_path) / deployment.code_configuration.code).resolve()
    return [remote for _, remote in upload_files(code)]


def upload_files(folder: str | os.PathLike) -> list[tuple[Path, str]]:
    """The files Azure ML uploads from the code folder ``folder``: ``(local file, path in the upload)`` pairs,
    sorted by the path in the upload (POSIX, relative to ``folder``).

    The rules are those of ``azure-ai-ml`` 1.35, which keeps its code for them private (``create_or_update``
    calls it; ``tests/test_azureml.py`` checks that both give the same list). The ignore file is
    ``folder/.amlignore``, else ``folder/.gitignore``, else there is none; only the one at the top counts. Every
    file under ``folder`` (linked folders followed) is tested on its own path against every line of it, in
    ``.gitignore`` syntax, and the last line that matches decides: a plain pattern leaves the file out, a ``!``
    pattern keeps it. Unlike git, a ``!`` line brings back a file even below a folder an earlier line left out
    (``build/`` then ``!build/keep.txt`` uploads ``build/keep.txt``). The local file is its real path (links
    resolved); the SDK would also match a file reached through a linked folder by that real path.
    """
    folder = Path(folder)
    ignore = next((folder / name for name in (".amlignore", ".gitignore") if (folder / name).exists()), None)
    lines = ignore.read_text(encoding="utf-8-sig").splitlines() if ignore else []
    rules = [rule for rule in map(_ignore_rule, lines) if rule is not None]
    files = []
    for root, _, names in os.walk(folder, followlinks=True):
        for name in names:
            relative = (Path(root) / name).relative_to(folder).as_posix()
            left_out = False
            for regex, leaves_out in rules:
                if regex.match(relative):
                    left_out = leaves_out
            if not left_out:
                files.append(((Path(root) / name).resolve(), relative))
    return sorted(files, key=lambda pair: pair[1])


def _ignore_rule(line: str) -> tuple[re.Pattern, bool] | None:
    """One line of an ignore file -> (regex over a file's POSIX path relative to the folder, True if a match
    leaves the file out, False if it keeps it), or None for a blank line or a comment. The translation is the
    one ``azure-ai-ml`` 1.35 uses (the ``gitwildmatch`` patterns of ``pathspec``, which it copies)."""
    pattern = line.strip()
    if not pattern or pattern.startswith("#") or pattern == "/":
        return None
    leaves_out = not pattern.startswith("!")
    segments = (pattern if leaves_out else pattern[1:]).split("/")
    segments = [s for i, s in enumerate(segments) if not (i and s == "**" and segments[i - 1] == "**")]
    if segments == ["**", ""]:      # "**/": everything below the top, not the files at the top
        return re.compile(r"^.+/.*$"), leaves_out
    if not segments[0]:             # "/name": anchored at the top
        del segments[0]
    elif len(segments) == 1 or (len(segments) == 2 and not segments[1]):   # "name", "name/": at any depth
        if segments[0] != "**":
            segments.insert(0, "**")
    if not segments:
        raise ValueError(f"invalid ignore pattern {line!r}")
    if len(segments) > 1 and not segments[-1]:   # "name/": everything below it
        segments[-1] = "**"
    regex, need_slash, last = ["^"], False, len(segments) - 1
    for index, segment in enumerate(segments):
        if segment == "**":
            regex.append(".+" if index == 0 == last else "(?:.+/)?" if index == 0 else "/.*" if index == last
                         else "(?:/.+)?")
            need_slash = 0 < index < last
            continue
        regex.append(("/" if need_slash else "") + ("[^/]+" if segment == "*" else _segment_regex(segment, line)))
        if index == last:       # a file, or a folder with everything below it
            regex.append("(?:/.*)?")
        need_slash = True
    return re.compile("".join(regex) + "$"), leaves_out


def _segment_regex(segment: str, line: str) -> str:
    """One path segment of a pattern (``*``, ``?``, ``[...]``, ``\\`` escapes) as a regex that stays within it."""
    regex, index = [], 0
    while index < len(segment):
        char, index = segment[index], index + 1
        if char == "\\":
            if index == len(segment):
                raise ValueError(f"invalid ignore pattern {line!r}: it ends with an escape")
            regex.append(re.escape(segment[index]))
            index += 1
        elif char in "*?":
            regex.append("[^/]*" if char == "*" else "[^/]")
        elif char == "[":
            end = index + (segment[index:index + 1] == "!")
            end += segment[end:end + 1] == "]"
            end = segment.find("]", end)
            if end < 0:                 # no closing bracket: a literal "["
                regex.append("\\[")
                continue
            body = segment[index:end]
            negation = "^" if body.startswith("!") else "\\^" if body.startswith("^") else ""
            regex.append("[" + negation + body[bool(negation):].replace("\\", "\\\\") + "]")
            index = end + 1
        else:
            regex.append(re.escape(char))
    return "".join(regex)


def describe(plan: Plan) -> str:
    """Every entity of ``plan`` as the YAML the SDK would send, and the code upload's file list."""
    parts = []
    for title, entity in (("endpoint", plan.endpoint), ("model", plan.model), ("environment", plan.environment),
                          ("deployment", plan.deployment)):
        parts.append(f"# --- {title} ---\n{_as_yaml(entity)}")
    files = code_files(plan.deployment)
    parts.append(f"# --- code upload: {len(files)} files ---\n" + "\n".join(files))
    return "\n".join(parts)


def _as_yaml(entity) -> str:
    # the entities' dump() differ (the endpoint's ignores its stream); their dict form is uniform
    import yaml

    return yaml.safe_dump(json.loads(json.dumps(entity._to_dict(), default=str)), sort_keys=False)


def request_body(image_path: str | os.PathLike) -> dict:
    """The JSON body ``score.py`` reads: ``{"image": base64 of the file}``."""
    return {"image": base64.b64encode(Path(image_path).read_bytes()).decode("ascii")}


def _client(args: argparse.Namespace):
    from azure.ai.ml import MLClient
    from azure.identity import DefaultAzureCredential

    return MLClient(DefaultAzureCredential(), args.subscription, args.resource_group, args.workspace)


def deploy(client, plan: Plan, image_path: Path | None, log_lines: int = 50) -> dict | None:
    """Create/update everything in ``plan`` on ``client``'s workspace, route all traffic to the deployment, and
    score ``image_path`` once; returns the answer (``None`` without an image)."""
    endpoint = client.online_endpoints.begin_create_or_update(plan.endpoint).result()
    print(f"endpoint {endpoint.name}: {endpoint.provisioning_state}, {endpoint.scoring_uri}")
    model = client.models.create_or_update(plan.model)
    environment = client.environments.create_or_update(plan.environment)
    print(f"registered model {model.name}:{model.version} and environment {environment.name}:{environment.version}")
    plan.deployment.model, plan.deployment.environment = model.id, environment.id
    try:
        deployment = client.online_deployments.begin_create_or_update(plan.deployment).result()
    except Exception:  # usually init() failing in the container: its log says why
        print(f"the deployment failed; its container log follows. The endpoint {endpoint.name} still exists and "
              f"bills while it has deployments: delete it with --delete", file=sys.stderr)
        print(client.online_deployments.get_logs(name=plan.deployment.name, endpoint_name=endpoint.name,
                                                 lines=log_lines), file=sys.stderr)
        raise
    print(f"deployment {deployment.name}: {deployment.provisioning_state}")
    endpoint.traffic = {deployment.name: 100}
    client.online_endpoints.begin_create_or_update(endpoint).result()
    answer = None
    if image_path is not None:
        with tempfile.TemporaryDirectory() as folder:
            request = Path(folder) / "request.json"
            request.write_text(json.dumps(request_body(image_path)))
            answer = json.loads(client.online_endpoints.invoke(endpoint_name=endpoint.name, request_file=str(request),
                                                               deployment_name=deployment.name))
        print(f"{image_path.name}: {answer['height']}x{answer['width']} mask, shares "
              + ", ".join(f"{name} {share:.2f}" for name, share in answer["shares"].items()))
    print(client.online_deployments.get_logs(name=deployment.name, endpoint_name=endpoint.name, lines=log_lines))
    return answer


def delete(client, endpoint_name: str) -> None:
    """Delete the endpoint and every deployment under it (their VMs stop billing)."""
    client.online_endpoints.begin_delete(name=endpoint_name).result()
    print(f"deleted endpoint {endpoint_name}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Deploy the book's U-Net to an Azure ML managed online endpoint.")
    for name, variable in WORKSPACE_ENV.items():
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, default=os.environ.get(variable),
                            help=f"(default ${variable})")
    parser.add_argument("--model", type=Path, default=None,
                        help="the .keras model (default: seglib.predict.default_model_path(), chapter 9's)")
    parser.add_argument("--endpoint-name", default=None, help="endpoint name, unique in the region "
                        "(default: endpoint.yml's)")
    parser.add_argument("--instance-type", default=None, help="VM size (default: deployment.yml's)")
    parser.add_argument("--image", type=Path, default=None, help="a PNG/JPEG to score once deployed "
                        "(default: the dataset's first val frame)")
    parser.add_argument("--log-lines", type=int, default=50, help="container log lines to print")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--dry-run", action="store_true", help="build and print every entity; contact nothing")
    action.add_argument("--delete", action="store_true", help="delete the endpoint and its deployments")
    return parser.parse_args(argv)


def _default_image() -> Path:
    from seglib import cityscapes, datasets

    return cityscapes.list_frames(datasets.dataset_root(), "val")[0].image_path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    missing = [f"--{name.replace('_', '-')} (or ${variable})" for name, variable in WORKSPACE_ENV.items()
               if not getattr(args, name)]
    try:
        if args.delete:
            if missing:
                raise ValueError(f"name the workspace: {', '.join(missing)}")
            delete(_client(args), args.endpoint_name or _endpoint_name())
            return 0
        from seglib import predict

        with tempfile.TemporaryDirectory() as folder:
            plan = build_plan(stage_model(args.model or predict.default_model_path(), folder),
                              args.endpoint_name, args.instance_type)
            if args.dry_run:
                print(describe(plan))
                print("# dry run: nothing was sent to Azure")
                return 0
            if missing:
                raise ValueError(f"name the workspace: {', '.join(missing)}")
            image = args.image or _default_image()
            if not image.is_file():  # checked before anything is created on Azure
                raise FileNotFoundError(f"--image {image} is not a file")
            deploy(_client(args), plan, image, args.log_lines)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def _endpoint_name() -> str:
    from azure.ai.ml import load_online_endpoint

    return load_online_endpoint(ENDPOINT_YAML).name


if __name__ == "__main__":
    sys.exit(main())
