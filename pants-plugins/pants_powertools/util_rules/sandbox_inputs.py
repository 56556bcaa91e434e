"""A sandbox script as a process input: its file, its siblings, and its JSON request."""

from __future__ import annotations

import json
from typing import Any, Mapping, Optional

from pants.engine.fs import CreateDigest, FileContent

from pants_powertools.sandbox import script_files


def script_input(
    directory: str, script: str, request: Optional[Mapping[str, Any]] = None
) -> CreateDigest:
    """`script` and the siblings it imports under `directory`, with `request` (if given) as
    `<directory>/request.json`, written the same way for every script so keys stay stable."""
    files = [FileContent(f"{directory}/{name}", data) for name, data in script_files(script)]
    if request is not None:
        files.append(
            FileContent(
                f"{directory}/request.json", json.dumps(request, sort_keys=True, indent=1).encode()
            )
        )
    return CreateDigest(files)
