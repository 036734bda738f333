"""The package's layers: a module imports only from layers below its own, and tests use
only public names."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "xata_migration"
TESTS = Path(__file__).resolve().parent
# each layer, and the layers below it that it may import
MAY_IMPORT = {
    "errors": set(), "connections": {"errors"},
    "plan": {"errors"},
    "sources": {"errors", "connections", "plan"},
    "load": {"errors", "connections", "plan"},
    "verify": {"errors", "connections", "plan", "load"},
    "api": {"errors", "connections", "plan", "load", "verify"},
    "defs": {"errors", "connections", "plan", "load", "verify", "api"},
}


def layer_of(module: str) -> str:
    return module.split(".")[1] if module.count(".") else ""


def imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(
                "xata_migration"):
            found += ([f"xata_migration.{a.name}" for a in node.names]
                      if node.module == "xata_migration" else [node.module])
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("xata_migration")]
    return found


def test_lower_layers_never_import_higher_ones():
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        layer = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if layer not in MAY_IMPORT:
            continue  # cli, definitions, embedded, __init__: the top
        for module in imports(path):
            other = layer_of(module)
            if other and other != layer and other not in MAY_IMPORT[layer]:
                wrong.append(f"{path.relative_to(PACKAGE)} imports {module}")
    assert not wrong, wrong


def test_the_layer_rule_sees_a_wrong_import(tmp_path):
    module = tmp_path / "bad.py"
    module.write_text("from xata_migration.defs.assets import table_key\n")
    assert layer_of(imports(module)[0]) == "defs" and "defs" not in MAY_IMPORT["plan"]


def test_plan_knows_nothing_of_dagster():
    for path in (PACKAGE / "plan").rglob("*.py"):
        assert "dagster" not in path.read_text(), path


def test_tests_import_no_private_name():
    private = []
    for path in TESTS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "xata_migration"):
                private += [f"{path.name}: {node.module}.{a.name}" for a in node.names
                            if a.name.startswith("_")]
    assert not private, private


def test_every_folder_says_what_it_owns_and_may_import():
    for folder in (p for p in PACKAGE.iterdir() if (p / "__init__.py").exists()):
        doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text()))
        assert doc and "import" in doc, folder
        for module in folder.glob("*.py"):
            if module.name != "__init__.py":
                assert module.name in doc, f"{folder.name}/__init__.py omits {module.name}"
