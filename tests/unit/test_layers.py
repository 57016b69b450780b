"""Which part may import which (docs/architecture.md, "Packages"): the arrows run one way."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FEATURES = ("server.briefing", "server.kiosk")


def imports(path: Path, *, run_time_only: bool = False) -> list[tuple[int, str]]:
    """(line, module) of each import in ``path``; ``run_time_only`` leaves out what sits under
    ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    skip: set[int] = set()
    if run_time_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    out = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out += [(node.lineno, node.module)]
            out += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return out


def test_the_cluster_imports_no_feature() -> None:
    wrong = [
        f"{p.relative_to(ROOT)}:{line}: {mod}"
        for p in sorted((ROOT / "server" / "cluster").rglob("*.py"))
        for line, mod in imports(p)
        if mod.startswith(FEATURES)
    ]
    assert not wrong, "server/cluster/ offers its bus; features subscribe to it:\n" + "\n".join(
        wrong
    )


def test_the_app_keys_import_nothing_of_ours_at_run_time() -> None:
    ours = ("server", "world", "assets_manifest")
    wrong = [
        f"server/keys.py:{line}: {mod}"
        for line, mod in imports(ROOT / "server" / "keys.py", run_time_only=True)
        if mod.split(".")[0] in ours
    ]
    assert not wrong, "\n".join(wrong)
