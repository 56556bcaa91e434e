"""The facts of `aws_lambda_runtimes.md`, for tests that check the plugin's runtime table.

Deliberately imports nothing from the plugin: it is the other side of the comparison.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

FACTS_FILE = Path(__file__).parent / "aws_lambda_runtimes.md"
UNCONFIRMED = "unconfirmed"


@dataclass(frozen=True)
class AwsRuntime:
    identifier: str
    operating_system: str
    deprecation: date
    block_create: Optional[date]  # None: unconfirmed
    block_update: Optional[date]


def aws_date(text: str) -> date:
    """`Jun 30, 2029`, as AWS writes dates; raises ValueError for anything else."""
    return datetime.strptime(text, "%b %d, %Y").date()


def _optional_date(text: str) -> Optional[date]:
    return None if text == UNCONFIRMED else aws_date(text)


def table_rows(markdown: str, heading: str) -> List[List[str]]:
    """The body rows of the first table under `## heading`, as lists of stripped cells."""
    section = markdown.split("\n## {}\n".format(heading), 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


def runtimes(markdown: Optional[str] = None) -> Dict[str, AwsRuntime]:
    text = FACTS_FILE.read_text() if markdown is None else markdown
    return {
        row[0]: AwsRuntime(
            row[0], row[1], aws_date(row[2]), _optional_date(row[3]), _optional_date(row[4])
        )
        for row in table_rows(text, "Python runtimes")
    }


def glibc_by_operating_system(markdown: Optional[str] = None) -> Mapping[str, Tuple[int, int]]:
    text = FACTS_FILE.read_text() if markdown is None else markdown
    result = {}
    for name, version in table_rows(text, "Operating systems"):
        match = re.fullmatch(r"(\d+)\.(\d+)", version)
        if match is None:
            raise ValueError("glibc {!r} of {} is not <major>.<minor>".format(version, name))
        result[name] = (int(match.group(1)), int(match.group(2)))
    return result
