"""The dependency rule of docs/architecture.md, enforced."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "tipline"
DOMAINS = {"accounts", "audit", "reports", "intake", "esp", "evidence", "matching", "routing",
           "triage", "cases", "messaging", "stats"}
ROUTE_MODULES = {"views", "public_views", "api", "json_api"}
BOTTOM = {"accounts", "audit", "evidence"}
UPPER = DOMAINS - BOTTOM - {"reports"}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("tipline")}


def domain_files() -> list[tuple[str, str, Path]]:
    return [(path.parent.name, path.stem, path)
            for path in sorted(SRC.glob("*/*.py")) if path.parent.name in DOMAINS]


def test_domains_never_import_another_domains_routes() -> None:
    problems = []
    for domain, _module, path in domain_files():
        for name in imports_of(path):
            parts = name.split(".")
            if len(parts) >= 3 and parts[1] in DOMAINS and parts[1] != domain and parts[2] in ROUTE_MODULES:
                problems.append(f"{path.relative_to(SRC)} imports {name}")
    assert problems == []


def test_only_route_modules_touch_web_or_cli() -> None:
    problems = []
    for _domain, module, path in domain_files():
        if module in ROUTE_MODULES:
            continue
        for name in imports_of(path):
            if name.startswith(("tipline.web", "tipline.cli")):
                problems.append(f"{path.relative_to(SRC)} imports {name}")
    assert problems == []


def test_bottom_layer_does_not_reach_up() -> None:
    problems = []
    for domain, _module, path in domain_files():
        allowed_up = set() if domain in BOTTOM else None
        if allowed_up is None and domain != "reports":
            continue
        forbidden = UPPER | ({"reports"} if domain in BOTTOM else set())
        for name in imports_of(path):
            parts = name.split(".")
            if len(parts) >= 2 and parts[1] in forbidden:
                problems.append(f"{path.relative_to(SRC)} imports {name}")
    assert problems == []


def test_only_crypto_touches_ciphers() -> None:
    allowed = {SRC / "crypto.py", SRC / "accounts" / "passwords.py", SRC / "accounts" / "totp.py"}
    problems = []
    for path in SRC.rglob("*.py"):
        if path in allowed:
            continue
        text = path.read_text()
        if "cryptography.hazmat" in text or "argon2" in text.replace("argon2_", ""):
            problems.append(str(path.relative_to(SRC)))
    assert problems == []
