"""Offline PromQL syntax checking, so ``gameday validate`` catches a bad query without a Prometheus.

Uses ``promtool check rules`` (Debian's ``prometheus`` package) when it is installed: the real parser.
Without it, a light check of brackets and quotes catches the common mistakes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

_RULE = re.compile(r'rule (\d+), "q\d+": could not parse expression: (.*)$')


def _balanced(expr: str) -> str | None:
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    quote: str | None = None
    for ch in expr:
        if quote:
            if ch == quote:
                quote = None
            continue
        if ch in "\"'`":
            quote = ch
        elif ch in "([{":
            stack.append(ch)
        elif ch in pairs:
            if not stack or stack.pop() != pairs[ch]:
                return f"parse error: unexpected {ch!r}"
    if quote:
        return "parse error: unterminated quoted string"
    if stack:
        return f"parse error: unclosed {stack[-1]!r}"
    return None


def check_promql(exprs: list[str]) -> list[str | None]:
    """One entry per expression: None when it parses, else the parser's message."""
    if not exprs:
        return []
    promtool = shutil.which("promtool")
    if promtool is None:
        return [_balanced(e) for e in exprs]
    rules = {"groups": [{"name": "gameday", "rules": [{"record": f"q{i}", "expr": e} for i, e in enumerate(exprs)]}]}
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "rules.yml"
        path.write_text(yaml.safe_dump(rules))
        proc = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=30)
    out: list[str | None] = [None] * len(exprs)
    for line in (proc.stdout + proc.stderr).splitlines():
        m = _RULE.search(line)
        if m:
            out[int(m.group(1)) - 1] = m.group(2)
    if proc.returncode != 0 and all(o is None for o in out):
        return [_balanced(e) for e in exprs]
    return out
