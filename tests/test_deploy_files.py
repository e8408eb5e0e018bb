"""The Azure deployment files: the YAML the SDK and CLI v2 load, the conda environment, deploy.py's dry run, the
training script the job runs, the App Service staging script and workflow, and no secret anywhere.

Nothing here reaches Azure: the YAML is validated by ``azure.ai.ml``'s own offline loaders, ``deploy.py --dry-run``
runs with every proxy pointed at a closed port, and the environment's completeness is checked against what the
scoring path really imports in a fresh interpreter.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
AZUREML = REPO / "deploy" / "azureml"
NO_NETWORK = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""}

# azure-ai-ml 1.35's schemas use marshmallow fields that marshmallow 4 deprecates: its warnings, not ours
pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _run(arguments: list[str], env: dict | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, *arguments], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", **(env or {})})


# ---------------------------------------------------------------------------------------------------------
# YAML, loaded by the SDK
# ---------------------------------------------------------------------------------------------------------

def test_endpoint_yaml():
    from azure.ai.ml import load_online_endpoint

    endpoint = load_online_endpoint(AZUREML / "endpoint.yml")
    assert endpoint.auth_mode == "key" and endpoint.name


def test_deployment_yaml_points_at_files_that_exist():
    from azure.ai.ml import load_online_deployment, load_online_endpoint

    deployment = load_online_deployment(AZUREML / "deployment.yml")
    assert deployment.endpoint_name == load_online_endpoint(AZUREML / "endpoint.yml").name
    code = (AZUREML / deployment.code_configuration.code).resolve()
    assert code == REPO
    assert (code / deployment.code_configuration.scoring_script).resolve() == AZUREML / "score.py"
    conda_file = yaml.safe_load((AZUREML / "deployment.yml").read_text())["environment"]["conda_file"]
    assert (AZUREML / conda_file).is_file()
    assert deployment.environment.conda_file == yaml.safe_load((AZUREML / conda_file).read_text())
    assert deployment.environment.image.startswith("mcr.microsoft.com/azureml/")
    assert deployment.instance_type and deployment.instance_count >= 1
    assert 5000 <= deployment.request_settings.request_timeout_ms <= 180000  # default 5 s, maximum 180 s
    assert deployment.environment_variables["NO_ALBUMENTATIONS_UPDATE"] == "1"


def test_training_job_yaml_runs_a_script_that_exists_and_is_uploaded():
    from azure.ai.ml import load_job

    from azure.ai.ml import load_online_deployment

    deploy = _load(AZUREML / "deploy.py", "deploy_for_job")
    job = load_job(AZUREML / "train-job.yml")
    script = re.match(r"python (\S+\.py) ", job.command)[1]
    code = (AZUREML / job.code).resolve()
    assert (code / script).is_file()
    assert job.inputs["data"].type == "uri_folder" and "${{inputs.data}}" in job.command
    assert job.outputs["model"].type == "uri_folder" and "${{outputs.model}}" in job.command
    assert job.compute == "cpu-cluster"  # azureml:cpu-cluster, a compute target of the workspace
    assert script in deploy.code_files(load_online_deployment(AZUREML / "deployment.yml"))


# (file, loader, text replaced, replacement, words the error must hold)
MUTATIONS = [
    ("endpoint.yml", "load_online_endpoint", "auth_mode: key", "auth_mode: password", "auth_mode"),
    ("deployment.yml", "load_online_deployment", "instance_count: 1", "instance_count: many", "instance_count"),
    ("deployment.yml", "load_online_deployment", "conda_file: conda.yaml", "conda_file: missing.yaml", "missing.yaml"),
    ("train-job.yml", "load_job", "type: uri_folder\n    path", "type: uri_foldr\n    path", "type"),
]


@pytest.mark.parametrize("name, loader, old, new, words", MUTATIONS, ids=[m[3] for m in MUTATIONS])
def test_a_broken_yaml_fails_validation_with_a_clear_error(tmp_path, name, loader, old, new, words):
    import azure.ai.ml

    text = (AZUREML / name).read_text()
    assert old in text
    for other in AZUREML.glob("*.yaml"):  # the conda file sits beside the YAML that names it
        (tmp_path / other.name).write_text(other.read_text())
    (tmp_path / name).write_text(text.replace(old, new))
    with pytest.raises(Exception, match=re.escape(words)):
        getattr(azure.ai.ml, loader)(tmp_path / name)
    getattr(azure.ai.ml, loader)(AZUREML / name)  # the original loads


# ---------------------------------------------------------------------------------------------------------
# The environment
# ---------------------------------------------------------------------------------------------------------

def _pins(lines) -> dict[str, str]:
    pins = {}
    for line in lines:
        match = re.match(r"^\s*([A-Za-z0-9_.\-]+)==(\S+)", line.split("#")[0])
        if match:
            pins[match[1].lower()] = match[2]
    return pins


def _conda_pip() -> list[str]:
    conda = yaml.safe_load((AZUREML / "conda.yaml").read_text())
    assert "python=3.11" in conda["dependencies"]
    return next(item["pip"] for item in conda["dependencies"] if isinstance(item, dict))


def test_conda_pins_are_the_requirements_pins():
    conda, requirements = _pins(_conda_pip()), _pins((REPO / "requirements.txt").read_text().splitlines())
    assert {"tensorflow", "keras", "numpy", "pillow", "azureml-inference-server-http"} <= set(conda)
    assert conda["azureml-inference-server-http"] == "1.5.1"
    assert {name: version for name, version in conda.items()} == {name: requirements[name] for name in conda}


def _requirement_closure(names) -> set[str]:
    """``names`` and everything their installed metadata requires (extras left out), by normalised name."""
    normal = lambda name: re.sub(r"[-_.]+", "-", name).lower()  # noqa: E731
    seen, todo = set(), [normal(name) for name in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for requirement in requires:
            if "extra ==" not in requirement:
                todo.append(normal(re.match(r"[A-Za-z0-9_.\-]+", requirement)[0]))
    return seen


# Runs score.py's init() and one prediction (with the overlay) in a fresh interpreter where only the standard
# library, seglib and the distributions in {allowed} can be imported: optional imports (IPython in Keras, SOCKS in
# requests) fall back as they would in the Azure image; a missing requirement fails.
SCORING_WITH_ONLY = """
import importlib.metadata, importlib.util, json, re, sys
allowed, owners = set({allowed!r}), importlib.metadata.packages_distributions()
normal = lambda name: re.sub(r"[-_.]+", "-", name).lower()
class OnlyTheEnvironment:
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        dists = owners.get(top)
        if top not in sys.stdlib_module_names and dists and not any(normal(d) in allowed for d in dists):
            raise ModuleNotFoundError(f"{{name}} ({{dists[0]}}) is not in the environment", name=name)
sys.meta_path.insert(0, OnlyTheEnvironment())
spec = importlib.util.spec_from_file_location("score", {score!r})
score = importlib.util.module_from_spec(spec); spec.loader.exec_module(score)
score.init()
from PIL import Image; import io, numpy as np
buffer = io.BytesIO(); Image.fromarray(np.zeros((32, 64, 3), np.uint8)).save(buffer, format="PNG")
answer = score.predictor.predict_bytes(buffer.getvalue()).as_json(overlay=True)
print(answer["height"], answer["width"], len(answer["overlay_png"]) > 0)
"""


def _score_with_only(allowed: set[str], model_dir: Path) -> subprocess.CompletedProcess:
    code = SCORING_WITH_ONLY.format(allowed=sorted(allowed), score=str(AZUREML / "score.py"))
    return _run(["-c", code], env={"AZUREML_MODEL_DIR": str(model_dir)}, cwd=model_dir)


def test_conda_environment_holds_everything_the_scoring_path_imports(tiny_model_path, tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.keras").write_bytes(tiny_model_path.read_bytes())
    environment = _requirement_closure([re.split(r"[=<>]", line)[0] for line in _conda_pip()]) | {"seglib"}
    result = _score_with_only(environment, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-3:] == ["32", "64", "True"]
    # the check can fail: without TensorFlow in the environment the same script cannot load the model
    result = _score_with_only(environment - {"tensorflow"}, tmp_path)
    assert result.returncode != 0 and "(tensorflow) is not in the environment" in result.stderr


# ---------------------------------------------------------------------------------------------------------
# deploy.py
# ---------------------------------------------------------------------------------------------------------

def test_dry_run_builds_every_entity_without_azure(tiny_model_path):
    result = _run([str(AZUREML / "deploy.py"), "--dry-run", "--model", str(tiny_model_path),
                   "--endpoint-name", "seg-test-1234"], env={**NO_NETWORK, "AZURE_SUBSCRIPTION_ID": ""})
    assert result.returncode == 0, result.stderr[-3000:]
    sections = dict(re.findall(r"# --- (\w+) ---\n(.*?)(?=\n# ---|\Z)", result.stdout, re.S))
    endpoint, deployment = yaml.safe_load(sections["endpoint"]), yaml.safe_load(sections["deployment"])
    model, environment = yaml.safe_load(sections["model"]), yaml.safe_load(sections["environment"])
    assert endpoint["name"] == deployment["endpoint_name"] == "seg-test-1234"
    assert endpoint["auth_mode"] == "key"
    assert deployment["code_configuration"]["scoring_script"] == "deploy/azureml/score.py"
    assert deployment["instance_type"] == "Standard_DS3_v2"
    assert model["type"] == "custom_model" and model["name"] == "street-scenes-unet"
    assert environment["conda_file"] == yaml.safe_load((AZUREML / "conda.yaml").read_text())
    assert "nothing was sent to Azure" in result.stdout


def test_dry_run_stages_the_model_folder_and_lists_the_code_upload(tiny_model_path, tmp_path):
    deploy = _load(AZUREML / "deploy.py", "deploy_under_test")
    folder = deploy.stage_model(tiny_model_path, tmp_path)
    assert [p.name for p in folder.iterdir()] == ["model.keras"]
    assert (folder / "model.keras").read_bytes() == tiny_model_path.read_bytes()
    plan = deploy.build_plan(folder, endpoint_name="other-name", instance_type="Standard_F4s_v2")
    assert (plan.endpoint.name, plan.deployment.endpoint_name) == ("other-name", "other-name")
    assert plan.deployment.instance_type == "Standard_F4s_v2" and plan.deployment.model is plan.model
    files = deploy.code_files(plan.deployment)
    assert "deploy/azureml/score.py" in files and "seglib/predict.py" in files
    assert not any(f.startswith(("book/", "tests/", ".git/", "_build/")) for f in files)
    with pytest.raises(FileNotFoundError, match="not a .keras model"):
        deploy.stage_model(tmp_path / "nothing.h5", tmp_path)


def test_deploy_without_a_workspace_says_what_is_missing(tiny_model_path):
    environment = {**NO_NETWORK, "AZURE_SUBSCRIPTION_ID": "", "AZURE_RESOURCE_GROUP": "", "AZUREML_WORKSPACE_NAME": ""}
    for extra in ([], ["--delete"]):
        result = _run([str(AZUREML / "deploy.py"), "--model", str(tiny_model_path), *extra], env=environment)
        assert result.returncode == 2
        assert "--resource-group (or $AZURE_RESOURCE_GROUP)" in result.stderr and "--workspace" in result.stderr


# ---------------------------------------------------------------------------------------------------------
# data_scripts/train.py (the job's command)
# ---------------------------------------------------------------------------------------------------------

def test_train_script_writes_a_servable_model(small_dataset, tmp_path, monkeypatch):
    import keras

    from seglib import labels, predict, profiles

    monkeypatch.setenv("SEGLIB_DATA", str(tmp_path / "data"))  # the run is kept here, not in the shared runs
    train = _load(REPO / "data_scripts" / "train.py", "train_script")
    arguments = ["--data", str(small_dataset), "--output", str(tmp_path / "out"), "--profile", "ci", "--epochs", "1"]
    assert train.main(arguments) == 0
    model = keras.models.load_model(tmp_path / "out" / "model.keras", compile=False)
    assert model.input_shape[1:] == (*profiles.get_profile("ci").image_size, 3)
    assert model.output_shape[-1] == labels.NUM_CATEGORIES
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["settings"]["epochs"] == 1 and record["settings"]["root"] == str(small_dataset.resolve())
    assert len(record["history"]["val_mean_iou"]) == 1
    predict.Predictor(tmp_path / "out" / "model.keras")  # loads where the endpoint would load it
    first = (tmp_path / "out" / "model.keras").read_bytes()
    assert train.main([*arguments[:3], str(tmp_path / "again"), *arguments[4:]]) == 0  # read back, not retrained
    assert (tmp_path / "again" / "model.keras").read_bytes() == first


def test_train_script_refuses_a_folder_that_is_not_a_dataset(tmp_path, capsys):
    train = _load(REPO / "data_scripts" / "train.py", "train_script_bad")
    assert train.main(["--data", str(tmp_path), "--output", str(tmp_path / "out")]) == 2
    assert "is not a Cityscapes root" in capsys.readouterr().err
    assert train.main(["--data", str(tmp_path), "--output", str(tmp_path / "out"), "--epochs", "0"]) == 2


# ---------------------------------------------------------------------------------------------------------
# App Service: staging and the workflow
# ---------------------------------------------------------------------------------------------------------

def test_stage_endpoint_mode(tmp_path):
    stage = _load(REPO / "deploy" / "appservice" / "stage.py", "stage_endpoint")
    folder = stage.stage(tmp_path / "app")
    assert (folder / "app.py").read_bytes() == (REPO / "app.py").read_bytes()
    assert (folder / "seglib" / "predict.py").read_bytes() == (REPO / "seglib" / "predict.py").read_bytes()
    assert not list(folder.rglob("__pycache__")) and not (folder / "model").exists()
    staged = _pins((folder / "requirements.txt").read_text().splitlines())
    repository = _pins((REPO / "requirements.txt").read_text().splitlines())
    assert set(staged) == {"flask", "gunicorn", "numpy", "pillow", "opencv-python-headless"}
    assert staged == {name: repository[name] for name in staged}
    with pytest.raises(FileExistsError, match="not empty"):
        stage.stage(folder)
    (tmp_path / "a-file").write_text("mine")
    with pytest.raises(FileExistsError, match="is a file"):
        stage.stage(tmp_path / "a-file")
    assert (tmp_path / "a-file").read_text() == "mine"


def test_stage_local_mode_carries_the_model(tmp_path, tiny_model_path):
    stage = _load(REPO / "deploy" / "appservice" / "stage.py", "stage_local")
    folder = stage.stage(tmp_path / "app", tiny_model_path)
    assert (folder / stage.MODEL_SETTING).read_bytes() == tiny_model_path.read_bytes()
    staged = _pins((folder / "requirements.txt").read_text().splitlines())
    assert staged["tensorflow"] == _pins((REPO / "requirements.txt").read_text().splitlines())["tensorflow"]
    with pytest.raises(ValueError, match="pins no version of nosuchpackage"):
        stage.pinned_requirements(REPO / "requirements.txt", ("flask", "nosuchpackage"))


def test_deploy_workflow_is_valid_and_takes_secrets_by_name():
    path = REPO / ".github" / "workflows" / "deploy-webapp.yml"
    result = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                             str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    steps = yaml.safe_load(path.read_text())["jobs"]["deploy"]["steps"]
    deploy = next(step for step in steps if step.get("uses", "").startswith("azure/webapps-deploy@"))
    assert deploy["uses"] == "azure/webapps-deploy@v3"
    assert deploy["with"]["publish-profile"] == "${{ secrets.AZURE_WEBAPP_PUBLISH_PROFILE }}"
    staging = next(step["run"] for step in steps if "stage.py" in step.get("run", ""))
    assert (REPO / staging.split()[1]).is_file()


# ---------------------------------------------------------------------------------------------------------
# No secret in the repository
# ---------------------------------------------------------------------------------------------------------

# Each pattern needs a value, so a mention of a setting's name (`--query primaryKey`) is not a finding.
SECRET_PATTERNS = {
    "endpoint key": re.compile(r"(primary|secondary)_?key[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9+/]{24,}", re.I),
    "key setting": re.compile(r"(ENDPOINT|API)_?KEY[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9+/]{24,}", re.I),
    "bearer token": re.compile(r"Bearer\s+[A-Za-z0-9+/_\-.=]{32,}"),
    "storage account key": re.compile(r"AccountKey=[A-Za-z0-9+/]{20,}"),
    "shared access key": re.compile(r"SharedAccessKey=[A-Za-z0-9+/]{20,}"),
    "publish profile": re.compile(r"<publishProfile\s[^>]*userPWD=\"[^\"]+\""),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
}


def find_secrets(root: Path, files: list[str]) -> list[str]:
    """``file: kind`` for every secret-looking value in the text ``files`` under ``root``."""
    findings = []
    for name in files:
        path = root / name
        if not path.is_file() or path.stat().st_size > 5_000_000:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary
        findings += [f"{name}: {kind}" for kind, pattern in SECRET_PATTERNS.items() if pattern.search(text)]
    return findings


def _repository_files() -> list[str]:
    """Tracked files and new files git would add (not ignored)."""
    result = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True, check=True)
    return result.stdout.splitlines()


def test_no_secret_is_committed():
    files = _repository_files()
    assert "deploy/azureml/deploy.py" in files and len(files) > 50
    assert find_secrets(REPO, files) == []


# Each value is split where the pattern would match, so that this file itself holds no finding.
FAKE_SECRETS = {
    "endpoint key": '{"primaryKey": "' + 'Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFy"}',
    "bearer token": "curl -H 'Authorization: Bearer " + "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9abcdef0123'",
    "storage account key": "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=" + "c2VjcmV0c2VjcmV0c2VjcmV0c2Vj==",
    "shared access key": "Endpoint=sb://x/;SharedAccessKeyName=y;SharedAccessKey=" + "c2VjcmV0c2VjcmV0c2VjcmV0",
    "publish profile": '<publishData><publish' + 'Profile profileName="app" userName="$app" userPWD="s3cr3tPassw0rd" />',
    "private key": "-----BEGIN RSA " + "PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
    "key setting": "SEGLIB_ENDPOINT_KEY=" + "Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4",
}


@pytest.mark.parametrize("kind", FAKE_SECRETS)
def test_a_planted_secret_is_found(tmp_path, kind):
    files = _repository_files()[:40] + ["deploy/azureml/planted.yml"]
    for name in files[:-1]:
        if (REPO / name).is_file():
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_bytes((REPO / name).read_bytes())
    (tmp_path / files[-1]).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / files[-1]).write_text(f"# a leak\nkey: {FAKE_SECRETS[kind]}\n")
    assert find_secrets(tmp_path, files) == [f"deploy/azureml/planted.yml: {kind}"]


def test_stage_ships_gunicorns_settings(tmp_path):
    """App Service runs gunicorn in the staged folder: without gunicorn.conf.py there, it would fall back to one
    thread, and /health would wait behind every upload."""
    stage = _load(REPO / "deploy" / "appservice" / "stage.py", "stage_settings")
    folder = stage.stage(tmp_path / "app")
    assert (folder / "gunicorn.conf.py").read_bytes() == (REPO / "gunicorn.conf.py").read_bytes()
