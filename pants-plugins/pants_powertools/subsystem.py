"""The `[powertools]` options: repository-wide defaults for Lambda artifacts."""

from __future__ import annotations

from typing import Tuple

from pants.option.option_types import BoolOption, StrListOption
from pants.option.subsystem import Subsystem
from pants.util.strutil import softwrap

from pants_powertools.layering import RUNTIME_PROVIDED_DISTRIBUTIONS


class PowertoolsSubsystem(Subsystem):
    options_scope = "powertools"
    help = softwrap(
        """
        Options for `python_aws_lambda_powertools` and `powertools_layer` targets: AWS Lambda
        artifacts built for the exact Lambda platform.
        """
    )

    runtime_provided = StrListOption(
        default=list(RUNTIME_PROVIDED_DISTRIBUTIONS),
        help=softwrap(
            """
            Distributions that every Lambda Python runtime already provides, left out of layer and
            function ZIPs (unless a target sets `exclude_runtime_provided=False`). The default is
            the set the official Powertools layer removes. Code that imports them still works in
            Lambda, which puts its own copies on the path after your layers.
            """
        ),
    )
    exclude_runtime_provided = BoolOption(
        default=True,
        help=softwrap(
            """
            Default for the `exclude_runtime_provided` field: whether artifacts leave out
            `[powertools].runtime_provided`.
            """
        ),
    )
    compile_bytecode = BoolOption(
        default=False,
        help=softwrap(
            """
            Default for the `compile_bytecode` field: whether artifacts ship hash-based `.pyc`
            files (PEP 552, `unchecked-hash`) compiled by a CPython of the runtime's minor
            version, which must be installed on the building machine (searched like Pants'
            `[python-bootstrap].search_path`).
            """
        ),
    )

    slim = BoolOption(
        default=False,
        help=softwrap(
            """
            Default for the `slim` field: whether artifacts leave out what third-party
            distributions ship but Lambda never runs: test suites inside their packages (unless
            code outside them imports them) and private compiled modules only those tests
            import, `.pyi` stubs and `*-stubs` packages, C/C++/Cython sources, headers and
            static libraries, docs (`*.md`, `*.rst`, `docs/`), and the symbol tables of their
            native code. `*.dist-info` directories and first-party code are never touched; the
            manifest's `slimmed` says what was left out.
            """
        ),
    )

    def runtime_provided_names(self) -> Tuple[str, ...]:
        return tuple(self.runtime_provided)
