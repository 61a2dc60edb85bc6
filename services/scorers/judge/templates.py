"""Judge prompt templates: text files the user can replace, rendered to chat messages.

A template file has a `[system]` section and a `[user]` section; each is a `string.Template`
(`$question`, `$gold`, ...), so LaTeX braces and JSON examples need no escaping, and a value is
inserted once, never re-expanded (an answer containing `$gold` stays literal text).

The defaults (`verify`, `rubric`) live beside this module in `templates/`; a directory given by
`REWARDSTACK_JUDGE_TEMPLATES_DIR` adds templates or replaces defaults of the same name. Every
template is loaded and test-rendered at startup: a missing section or an unknown `$field` is a
startup error, never a failed batch. Each template carries a digest of its text, so the verdict
cache never serves an answer given under different wording.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Literal

Mode = Literal["verify", "rubric"]

DEFAULT_DIR = Path(__file__).parent / "templates"
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
# The fields each mode fills; a template may use any subset of them, and nothing else.
FIELDS: dict[Mode, frozenset[str]] = {
    "verify": frozenset({"question", "gold", "answer"}),
    "rubric": frozenset({"question", "reference", "rubric", "response", "scale_min", "scale_max"}),
}
_SECTION = re.compile(r"^\[(system|user)\][ \t]*$", re.MULTILINE)


class TemplateError(ValueError):
    """A template file that cannot be used; raised at startup with the file's path."""


@dataclass(frozen=True)
class PromptTemplate:
    """One loaded template: its name, mode (from the fields it uses), sections and text digest."""

    name: str
    system: str
    user: str
    digest: str

    def fields(self) -> frozenset[str]:
        found: set[str] = set()
        for section in (self.system, self.user):
            for match in Template.pattern.finditer(section):
                if match.group("invalid") is not None:
                    raise TemplateError(f"template {self.name!r}: a lone `$` (write `$$` for a dollar sign)")
                if name := match.group("named") or match.group("braced"):
                    found.add(name)
        return frozenset(found)

    def mode(self) -> Mode:
        """`rubric` when the template reads `$response`, else `verify`."""
        return "rubric" if "response" in self.fields() else "verify"

    def render(self, values: dict[str, str]) -> list[dict[str, str]]:
        """Chat messages with `values` inserted; every field the template uses must be given."""
        messages = []
        if self.system.strip():
            messages.append({"role": "system", "content": Template(self.system).substitute(values).strip()})
        messages.append({"role": "user", "content": Template(self.user).substitute(values).strip()})
        return messages


def parse_template(name: str, text: str) -> PromptTemplate:
    """Split a template file's text into its sections and check its fields."""
    parts = _SECTION.split(text)
    # parts = [before, "system", body, "user", body] (the system section may be absent)
    sections = dict(zip(parts[1::2], parts[2::2]))
    if parts[0].strip() or "user" not in sections or len(sections) != len(parts[1::2]):
        raise TemplateError(f"template {name!r}: expected an optional [system] section, then one [user] section")
    template = PromptTemplate(
        name=name,
        system=sections.get("system", ""),
        user=sections["user"],
        digest=hashlib.sha256(text.encode()).hexdigest()[:16],
    )
    unknown = template.fields() - FIELDS[template.mode()]
    if unknown:
        raise TemplateError(
            f"template {name!r} uses unknown fields {sorted(unknown)}; a {template.mode()} template may use "
            f"{', '.join('$' + f for f in sorted(FIELDS[template.mode()]))}"
        )
    return template


def load_templates(extra_dir: Path | None = None) -> dict[str, PromptTemplate]:
    """The default templates, overridden or extended by the `*.txt` files in `extra_dir`."""
    files = {p.stem: p for p in sorted(DEFAULT_DIR.glob("*.txt"))}
    if extra_dir is not None:
        if not extra_dir.is_dir():
            raise TemplateError(f"REWARDSTACK_JUDGE_TEMPLATES_DIR={extra_dir} is not a directory")
        files.update({p.stem: p for p in sorted(extra_dir.glob("*.txt"))})
    templates = {}
    for name, path in files.items():
        if not NAME.fullmatch(name):
            raise TemplateError(f"{path}: a template's file name must match {NAME.pattern}.txt")
        try:
            templates[name] = parse_template(name, path.read_text(encoding="utf-8"))
        except TemplateError as exc:
            raise TemplateError(f"{path}: {exc}") from None
    for mode in FIELDS:
        if templates[mode].mode() != mode:
            raise TemplateError(f"the template named {mode!r} must be a {mode} template")
    return templates
