"""The package's layers: a module imports only from layers below its own, the load and
the checks stand side by side, the source side knows nothing of Dagster, and tests use
only the core API and each package's declared public names."""

import ast
import importlib
import importlib.util
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "xata_migration"
TESTS = Path(__file__).resolve().parent
BENCHMARKS = PACKAGE.parent / "benchmarks"
GROUND = {"errors", "masking", "connections", "embedded"}
# each layer, and the layers below it that it may import
MAY_IMPORT = {
    "errors": set(), "masking": set(), "connections": {"errors", "masking"},
    "embedded": {"errors"},
    "plan": {"errors"},
    "asset_names": {"errors", "plan"},
    "sources": GROUND | {"plan"},
    "snapshot": GROUND,
    "pg": GROUND | {"plan"},
    "load": GROUND | {"plan", "pg", "snapshot"},
    "verify": GROUND | {"plan", "pg"},
    "jobs": GROUND,
    "api": GROUND | {"plan", "asset_names", "sources", "snapshot", "pg", "load", "verify",
                     "jobs"},
    "defs": GROUND | {"plan", "asset_names", "sources", "snapshot", "pg", "load", "verify",
                      "jobs", "api"},
}


def layer_of(module: str) -> str:
    return module.split(".")[1] if module.count(".") else ""


def imports(path: Path) -> list[str]:
    """Every module of the package that `path` imports (names imported from the package
    itself count as its modules)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(
                "xata_migration."):
            found.append(node.module)
        elif isinstance(node, ast.ImportFrom) and node.module == "xata_migration":
            found += [f"xata_migration.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("xata_migration.")]
    return found


def layer_violations(path: Path, layer: str) -> list[str]:
    return [f"{path.relative_to(PACKAGE.parent)} imports {module}" for module in imports(path)
            if layer_of(module) not in ("", layer)
            and layer_of(module) not in MAY_IMPORT[layer]]


def test_lower_layers_never_import_higher_ones():
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        layer = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if layer in MAY_IMPORT:  # else cli, definitions, __init__: the top
            wrong += layer_violations(path, layer)
    assert not wrong, wrong


def test_load_and_verify_never_import_each_other():
    assert "verify" not in MAY_IMPORT["load"] and "load" not in MAY_IMPORT["verify"]
    for layer, other in (("load", "verify"), ("verify", "load")):
        for path in (PACKAGE / layer).rglob("*.py"):
            assert not any(layer_of(m) == other for m in imports(path)), path


def test_the_layer_rule_sees_a_wrong_import(tmp_path):
    module = tmp_path / "bad.py"
    module.write_text("from xata_migration.load.links import MissingLinks\n"
                      "from xata_migration import api\n")
    assert [layer_of(m) for m in imports(module)] == ["load", "api"]
    assert all(layer not in MAY_IMPORT["verify"] for layer in ("load", "api"))


def _dagster_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
    return [name for name in names if name.split(".")[0].startswith("dagster")]


def test_the_source_side_and_the_plan_know_nothing_of_dagster():
    for folder in ("snapshot", "plan", "pg", "load", "verify"):
        for path in (PACKAGE / folder).rglob("*.py"):
            assert not _dagster_imports(path), path
    for path in (PACKAGE / "plan").rglob("*.py"):
        assert "dagster" not in path.read_text(), path


def test_the_dagster_rule_sees_an_import(tmp_path):
    module = tmp_path / "bad.py"
    module.write_text("def f():\n    import dagster as dg\n    from dagster_postgres import x\n")
    assert _dagster_imports(module) == ["dagster", "dagster_postgres"]


def non_public_imports(path: Path) -> list[str]:
    """What a test reaches that is not the package's public surface: a module inside a
    package (xata_migration.load.table), a name a package does not declare in
    `__all__`, or a private name of a plain module (connections, cli, ...)."""
    wrong = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            wrong += [a.name for a in node.names
                      if a.name.startswith("xata_migration.") and a.name.count(".") > 1]
        if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith(
                "xata_migration") or node.module.startswith("xata_migration_tests"):
            continue
        if node.module.count(".") > 1:
            wrong.append(node.module)
            continue
        module = importlib.import_module(node.module)
        public = getattr(module, "__all__", None) if hasattr(module, "__path__") else None
        for alias in node.names:
            name = alias.name
            is_module = importlib.util.find_spec(f"{node.module}.{name}") is not None \
                if node.module == "xata_migration" else False
            if name.startswith("_") or (public is not None and name not in public
                                        and not is_module):
                wrong.append(f"{node.module}.{name}")
    return [f"{path.name}: {w}" for w in wrong]


def test_tests_and_benchmarks_use_only_public_names():
    wrong = []
    for path in [*TESTS.glob("*.py"), *BENCHMARKS.glob("*.py")]:
        wrong += non_public_imports(path)
    assert not wrong, wrong


def test_the_public_rule_sees_a_reach_inside(tmp_path):
    module = tmp_path / "test_bad.py"
    module.write_text("from xata_migration.load.table import load_table\n"
                      "from xata_migration.load import PhaseClock\n"
                      "from xata_migration.masking import _password_spans\n"
                      "from xata_migration.load import load_table\n"
                      "from xata_migration import api\n")
    assert non_public_imports(module) == [
        "test_bad.py: xata_migration.load.table", "test_bad.py: xata_migration.load.PhaseClock",
        "test_bad.py: xata_migration.masking._password_spans"]


def test_every_command_is_its_arguments_and_one_api_call():
    tree = ast.parse((PACKAGE / "cli.py").read_text())
    commands = [f for f in tree.body if isinstance(f, ast.FunctionDef)
                and f.name.startswith("command_")]
    assert len(commands) == 8
    for command in commands:
        calls = [n.func.attr for n in ast.walk(command) if isinstance(n, ast.Call)
                 and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name)
                 and n.func.value.id == "api"]
        assert len(calls) == 1, (command.name, calls)
    package_imports = {m for m in imports(PACKAGE / "cli.py")}
    assert package_imports == {"xata_migration.api", "xata_migration.embedded",
                               "xata_migration.errors", "xata_migration.masking"}


def test_every_folder_says_what_it_owns_and_may_import():
    for folder in (p for p in PACKAGE.iterdir() if (p / "__init__.py").exists()):
        doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text()))
        assert doc and "import" in doc, folder
        for module in folder.glob("*.py"):
            if module.name != "__init__.py":
                assert module.name in doc, f"{folder.name}/__init__.py omits {module.name}"


def test_every_package_declares_what_it_exports():
    for folder in (p for p in PACKAGE.iterdir() if (p / "__init__.py").exists()):
        module = importlib.import_module(f"xata_migration.{folder.name}")
        assert all(hasattr(module, name) for name in module.__all__), folder
