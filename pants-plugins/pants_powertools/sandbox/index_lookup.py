"""Ask package indexes what they hold for some projects: a standalone script, stdlib only.

pip's error text cannot tell "no such project" from "no compatible wheel" (both print
`from versions: none`), and pex's lock does not record yanks. The plugin runs this script in a
sandboxed Process (never in rule code) with the same indexes pex used, and reads its JSON:

    {"projects": {"<name>": {"found": true, "index": "<url>",
                             "files": [{"filename": "...", "yanked": null | "<reason>"}]}},
     "errors": ["<index>: <why it could not be asked>"]}

It speaks the PEP 691 JSON simple API and falls back to PEP 503 HTML. Any failure to reach an
index is reported, not raised: callers then fall back to pip's own message.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from typing import Dict, List, Optional, Sequence, Tuple
from urllib.error import HTTPError
from urllib.parse import urljoin
from urllib.request import Request, urlopen

_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, "
    "application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
)
_TIMEOUT = 20


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _yank_reason(value: object) -> Optional[str]:
    """PEP 691/592: `yanked` is false, true, or the reason; "" when yanked without a reason."""
    if value is None or value is False:
        return None
    if value is True:
        return ""
    return str(value)


def parse_json_page(text: str) -> List[Dict[str, Optional[str]]]:
    data = json.loads(text)
    return [
        {"filename": str(f["filename"]), "yanked": _yank_reason(f.get("yanked"))}
        for f in data.get("files", [])
        if isinstance(f, dict) and "filename" in f
    ]


class _Anchors(HTMLParser):
    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base
        self.files: List[Dict[str, Optional[str]]] = []
        self._current: Optional[Dict[str, Optional[str]]] = None

    def handle_starttag(self, tag: str, attrs: List[Tuple[str, Optional[str]]]) -> None:
        if tag != "a":
            return
        attributes = dict(attrs)
        href = attributes.get("href") or ""
        filename = urljoin(self.base, href).split("#", 1)[0].rsplit("/", 1)[-1]
        yanked = (
            _yank_reason(attributes["data-yanked"] or True) if "data-yanked" in attributes else None
        )
        self._current = {"filename": filename, "yanked": yanked}

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._current is not None:
            if self._current["filename"]:
                self.files.append(self._current)
            self._current = None


def parse_html_page(text: str, base: str = "") -> List[Dict[str, Optional[str]]]:
    parser = _Anchors(base)
    parser.feed(text)
    return parser.files


def fetch(
    index: str, project: str
) -> Tuple[Optional[List[Dict[str, Optional[str]]]], Optional[str]]:
    """(files, None) when the index has the project, (None, None) when not, (None, why) on error."""
    url = index.rstrip("/") + "/" + canonical(project) + "/"
    try:
        with urlopen(Request(url, headers={"Accept": _ACCEPT}), timeout=_TIMEOUT) as response:
            content_type = response.headers.get("Content-Type", "")
            text = response.read().decode("utf-8", errors="replace")
    except HTTPError as e:
        if e.code == 404:
            return None, None
        return None, "{}: HTTP {} for {}".format(index, e.code, url)
    except Exception as e:  # noqa: BLE001 - any network failure means "unknown", not a crash
        return None, "{}: {}".format(index, e)
    if "json" in content_type:
        return parse_json_page(text), None
    return parse_html_page(text, url), None


def lookup(indexes: Sequence[str], projects: Sequence[str]) -> Dict[str, object]:
    def one(project: str) -> Tuple[str, Dict[str, object], List[str]]:
        errors = []
        for index in indexes:
            files, error = fetch(index, project)
            if error:
                errors.append(error)
            elif files is not None:
                return project, {"found": True, "index": index, "files": files}, errors
        # Not found anywhere we could ask; unknown if some index could not be asked.
        found = False if not errors else None
        return project, {"found": found, "index": ", ".join(indexes), "files": []}, errors

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, sorted(set(projects))))
    return {
        "projects": {project: info for project, info, _ in results},
        "errors": sorted({e for _, _, errors in results for e in errors}),
    }


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", action="append", default=[])
    parser.add_argument("--out", required=True)
    parser.add_argument("projects", nargs="*")
    args = parser.parse_args(argv)
    result = lookup(args.index or ["https://pypi.org/simple/"], args.projects)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
