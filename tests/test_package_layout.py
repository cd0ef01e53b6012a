"""The rooms of the package import one way: spec -> space -> models -> latency / data -> training ->
proxy -> search -> analysis -> export / train -> cli; the neutral modules at the top import no room."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "archsearch"
ORDER = {"spec": 0, "space": 1, "models": 2, "latency": 3, "data": 3, "training": 4, "proxy": 5, "search": 6,
         "analysis": 7, "export": 8, "train": 8, "cli": 9}
NEUTRAL = {"choices", "environment", "errors", "files", "pareto", "workspace"}


def _imported_rooms(path: Path) -> set[str]:
    rooms = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("archsearch."):
            rooms.add(node.module.split(".")[1])
        elif isinstance(node, ast.ImportFrom) and node.module == "archsearch":
            rooms.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            rooms.update(a.name.split(".")[1] for a in node.names if a.name.startswith("archsearch."))
    return rooms


def test_every_import_runs_down_the_data_flow():
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).parts
        room = parts[0] if len(parts) > 1 else path.stem
        for other in _imported_rooms(path):
            if room in NEUTRAL and other in ORDER:
                wrong.append(f"{path.relative_to(PACKAGE)} (neutral) imports {other}")
            elif room in ORDER and other in ORDER and other != room and ORDER[other] >= ORDER[room]:
                wrong.append(f"{path.relative_to(PACKAGE)} ({room}) imports {other}")
    assert not wrong, "\n".join(wrong)
