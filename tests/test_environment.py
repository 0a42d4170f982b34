"""The environment files must not drift apart, and CI must run what the README tells people to run."""
import re
import tomllib

import yaml

from saccadelib.paths import REPO_ROOT

CONDA_NAMES = {"torch": "pytorch", "openslide-bin": "openslide"}  # conda-forge's names for the same packages


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[;]", requirement.strip(), maxsplit=1)[0].lower()


def _pyproject():
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]


def _all(project) -> list[str]:
    return project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]


def test_library_needs_only_the_core_dependencies():
    """Importing the model and predict must not pull in the study's packages (the `study` extra)."""
    import subprocess
    import sys

    code = ("import sys, saccadelib.model, saccadelib.inference, saccadelib.train, saccadelib.registry; "
            "print(sorted({'pandas', 'papermill', 'seaborn', 'matplotlib', 'ipywidgets', 'rawpy'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
    core = {_name(r) for r in _pyproject()["dependencies"]}
    assert core == {"torch", "torchvision", "numpy", "pillow", "tqdm", "tifffile", "imagecodecs"}


def test_environment_yml_lists_exactly_pyprojects_dependencies():
    project = _pyproject()
    wanted = {_name(r) for r in _all(project)}
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = [d for d in env["dependencies"] if isinstance(d, dict)]
    assert "python=3.11" in conda and pip == [{"pip": ["-e ."]}]
    listed = {_name(d) for d in conda} - {"python", "pip"}
    assert listed == {CONDA_NAMES.get(n, n) for n in wanted}


def test_lock_pins_every_dependency_exactly():
    pins = {}
    for line in (REPO_ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name.lower().replace("_", "-")] = version
    project = _pyproject()
    for requirement in _all(project):
        assert pins.get(_name(requirement).replace("_", "-")), f"{requirement} is not pinned in requirements.lock"


def test_ci_runs_the_readme_test_command():
    readme = (REPO_ROOT / "README.md").read_text()
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in readme and "bash scripts/reproduce.sh" in readme
    commands = [line for line in ci.splitlines() if line and not line.startswith("#") and not line.startswith("set ")
                and not line.startswith("cd ")]
    assert commands[-1] == "exec bash scripts/test.sh"
    # before it, only the browser test's Chromium install (nothing else that could differ from the README)
    assert all("scripts/" not in c and "pytest" not in c for c in commands[:-1])
    assert "apt-get install" in ci and "chromium" in ci


def _import_graph() -> dict[str, set[str]]:
    """saccadelib's modules and the modules of saccadelib each imports (at any depth in its code)."""
    import ast

    root = REPO_ROOT / "saccadelib"
    modules = {".".join(p.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(".__init__"): p
               for p in root.rglob("*.py")}
    graph = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
                full = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module or ""
                targets = [f"{full}.{a.name}" if f"{full}.{a.name}" in modules else full for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            graph[name] |= {t for t in targets if t in modules and t != name and not name.startswith(t + ".")}
    return graph


def test_the_library_imports_in_one_direction():
    """No import circle; the benchmarks never import the study, and the library neither of them."""
    graph = _import_graph()
    assert len(graph) > 30 and "saccadelib.model.saccade" in graph["saccadelib.registry"] | graph["saccadelib.model"]
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for nxt in graph[node]:
            assert state.get(nxt) != 1, "import circle: " + " -> ".join(path + [nxt])
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module, [module])
    edges = [(a, b) for a, targets in graph.items() for b in targets]
    assert not [e for e in edges if e[0].startswith("saccadelib.bench") and e[1].startswith("saccadelib.study")]
    side = ("saccadelib.bench", "saccadelib.study")
    cli = ("saccadelib.__main__", "saccadelib.cli")
    assert not [e for e in edges if not e[0].startswith(side) and not e[0].startswith(cli) and e[1].startswith(side)]


def test_the_names_a_user_types_need_no_torch_and_match_what_builds_them():
    import subprocess
    import sys

    code = ("import sys, saccadelib.names, saccadelib.train_config, saccadelib.cli; "
            "print(sorted(m for m in ('torch', 'saccadelib.tasks', 'saccadelib.datasets', 'saccadelib.registry') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"  # the training config is a leaf, the command line's help starts without torch
    from saccadelib import names, recipes, registry
    from saccadelib.datasets import twodigit

    assert names.MODELS == tuple(registry.REGISTRY) and names.RECIPE_NAMES == tuple(recipes.RECIPES)
    assert names.TWO_DIGIT_TASKS == tuple(twodigit.TASKS)
    assert all(model in names.MODEL_HELP for model in names.MODELS)
