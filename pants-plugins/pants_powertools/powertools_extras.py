"""Build-time check that a function packages the Powertools extras its code needs.

Powertools for AWS Lambda (Python) keeps its heavy dependencies (aws-xray-sdk, pydantic,
fastjsonschema, aws-encryption-sdk, ...) behind pip extras. A function that uses `Tracer`
without `aws-lambda-powertools[tracer]` builds fine and then dies at cold start with
`ModuleNotFoundError`. This module finds that at build time, without Pants:

- `EXTRA_RULES` is the one table of *what in Powertools needs which extra*. It was derived from
  the aws-lambda-powertools 3.37.0 wheel by importing every module (and running the lazy code
  paths below) in a venv without extras; `powertools_extras_test.py` re-proves every row
  against the real wheel.
- *Which distributions an extra brings* is never hard-coded: it is read from the wheel's own
  METADATA by `extras_requirements`, so a newer Powertools that changes an extra's
  dependencies is followed automatically.

Limits, on purpose: only the distribution *names* an extra requires are compared (not their
versions); environment markers other than `extra == ...` are ignored, i.e. such a
requirement is treated as always needed (no 3.37.0 requirement has one); imports made through
strings (`importlib.import_module("...")`) are not seen.
"""

import ast
import io
import tokenize
from dataclasses import dataclass
from typing import Collection, Dict, FrozenSet, Iterable, List, Mapping, Optional, Set, Tuple

from pants_powertools import distributions
from pants_powertools.distributions import POWERTOOLS_DISTRIBUTION
from pants_powertools.distributions import canonicalize_name as normalize_name

POWERTOOLS_PACKAGE = "aws_lambda_powertools"


@dataclass(frozen=True)
class ExtraRule:
    """One row of `EXTRA_RULES`: using `trigger` at runtime needs `extra`.

    `trigger` has one of three forms:
    - a dotted path (`aws_lambda_powertools.utilities.parser`): matches that module or symbol
      and everything below it, however it is imported;
    - `name=value` (`enable_validation=True`): a keyword argument with that constant value in
      any call of a file that imports Powertools (the code path is imported lazily);
    - `name()` (`enable_swagger()`): a call of that function or method in such a file.
    """

    trigger: str
    extra: str
    feature: str


# What in Powertools 3.37.0 needs which extra. Every row is proven by the wheel test:
# failing in a venv without the extra, working with it. Rows that re-export or lazily import
# (Tracer at the package root, enable_validation=True, Kafka schema types) are the ones that
# bite after a green build, because plain `import` of the package still works.
# Not listed, deliberately: `valkey` (Powertools never imports valkey-glide; users pass their
# own client) and `datadog` (DatadogMetrics falls back to logging without datadog-lambda).
EXTRA_RULES: Tuple[ExtraRule, ...] = (
    # Tracer: aws_xray_sdk is imported lazily, so `Tracer()` (not the import) fails.
    ExtraRule("aws_lambda_powertools.Tracer", "tracer", "Tracer"),
    ExtraRule("aws_lambda_powertools.tracing", "tracer", "Tracer"),
    # pydantic: there is no separate extra for event handler validation; `parser` brings it.
    ExtraRule("aws_lambda_powertools.utilities.parser", "parser", "Parser"),
    ExtraRule("enable_validation=True", "parser", "Event handler data validation"),
    ExtraRule("enable_swagger()", "parser", "Event handler Swagger UI"),
    # The openapi package itself is light; these user-facing modules import pydantic.
    ExtraRule(
        "aws_lambda_powertools.event_handler.openapi.params", "parser", "Event handler OpenAPI"
    ),
    ExtraRule(
        "aws_lambda_powertools.event_handler.openapi.models", "parser", "Event handler OpenAPI"
    ),
    ExtraRule(
        "aws_lambda_powertools.event_handler.openapi.encoders", "parser", "Event handler OpenAPI"
    ),
    ExtraRule(
        "aws_lambda_powertools.event_handler.middlewares.openapi_validation",
        "parser",
        "Event handler data validation",
    ),
    # BedrockAgentResolver validates by default (enable_validation defaults to True).
    ExtraRule(
        "aws_lambda_powertools.event_handler.BedrockAgentResolver",
        "parser",
        "Bedrock Agent resolver",
    ),
    ExtraRule(
        "aws_lambda_powertools.event_handler.bedrock_agent.BedrockAgentResolver",
        "parser",
        "Bedrock Agent resolver",
    ),
    ExtraRule(
        "aws_lambda_powertools.utilities.idempotency.serialization.pydantic",
        "parser",
        "Idempotency Pydantic serializer",
    ),
    ExtraRule(
        "aws_lambda_powertools.utilities.kafka.serialization.pydantic",
        "parser",
        "Kafka consumer Pydantic serializer",
    ),
    # fastjsonschema
    ExtraRule("aws_lambda_powertools.utilities.validation", "validation", "Validation"),
    ExtraRule(
        "aws_lambda_powertools.event_handler.middlewares.schema_validation",
        "validation",
        "Event handler schema validation middleware",
    ),
    # jsonpath-ng at import, aws-encryption-sdk for the KMS provider
    ExtraRule("aws_lambda_powertools.utilities.data_masking", "datamasking", "Data masking"),
    # boto3/botocore at import: usually satisfied by the Lambda runtime, which the caller says.
    ExtraRule("aws_lambda_powertools.utilities.idempotency", "aws-sdk", "Idempotency"),
    ExtraRule("aws_lambda_powertools.utilities.parameters", "aws-sdk", "Parameters"),
    ExtraRule("aws_lambda_powertools.utilities.feature_flags", "aws-sdk", "Feature flags"),
    ExtraRule("aws_lambda_powertools.utilities.streaming", "aws-sdk", "Streaming"),
    ExtraRule(
        "aws_lambda_powertools.utilities.circuit_breaker.persistence",
        "aws-sdk",
        "Circuit breaker persistence",
    ),
    # redis at import (also needs aws-sdk: the idempotency package imports DynamoDB first)
    ExtraRule(
        "aws_lambda_powertools.utilities.idempotency.persistence.redis",
        "redis",
        "Idempotency with Redis",
    ),
    ExtraRule(
        "aws_lambda_powertools.utilities.idempotency.persistence.cache",
        "redis",
        "Idempotency with Redis",
    ),
    # Kafka deserializers are imported lazily from the SchemaConfig schema type.
    ExtraRule(
        "aws_lambda_powertools.utilities.kafka.deserializer.avro",
        "kafka-consumer-avro",
        "Kafka consumer (Avro)",
    ),
    ExtraRule("value_schema_type='AVRO'", "kafka-consumer-avro", "Kafka consumer (Avro)"),
    ExtraRule("key_schema_type='AVRO'", "kafka-consumer-avro", "Kafka consumer (Avro)"),
    ExtraRule(
        "aws_lambda_powertools.utilities.kafka.deserializer.protobuf",
        "kafka-consumer-protobuf",
        "Kafka consumer (Protobuf)",
    ),
    ExtraRule(
        "value_schema_type='PROTOBUF'", "kafka-consumer-protobuf", "Kafka consumer (Protobuf)"
    ),
    ExtraRule("key_schema_type='PROTOBUF'", "kafka-consumer-protobuf", "Kafka consumer (Protobuf)"),
    # auth_alpha packages re-export lazily (module __getattr__): only these names need the extra.
    ExtraRule("aws_lambda_powertools.utilities.auth_alpha.JWTVerifier", "jwt", "JWT verification"),
    ExtraRule(
        "aws_lambda_powertools.utilities.auth_alpha.jwt.JWTVerifier", "jwt", "JWT verification"
    ),
    ExtraRule("aws_lambda_powertools.utilities.auth_alpha.jwt.verifier", "jwt", "JWT verification"),
    ExtraRule("aws_lambda_powertools.utilities.auth_alpha.OAuth2Client", "oauth2", "OAuth2 client"),
    ExtraRule(
        "aws_lambda_powertools.utilities.auth_alpha.oauth2.OAuth2Client", "oauth2", "OAuth2 client"
    ),
    ExtraRule(
        "aws_lambda_powertools.utilities.auth_alpha.oauth2.client", "oauth2", "OAuth2 client"
    ),
)

# Kinds that `powertools_imports` reports but that never run in Lambda.
IGNORED_KINDS: FrozenSet[str] = frozenset({"type-checking"})


def _is_exact_trigger(trigger: str) -> bool:
    return "=" in trigger or trigger.endswith("()")


def _keyword_triggers() -> Dict[str, FrozenSet[str]]:
    """Keyword name -> accepted constant values (as repr), from the `name=value` rows."""
    triggers: Dict[str, FrozenSet[str]] = {}
    for rule in EXTRA_RULES:
        if "=" in rule.trigger:
            name, value = rule.trigger.split("=", 1)
            triggers[name] = triggers.get(name, frozenset()) | {value}
    return triggers


_KEYWORD_TRIGGERS = _keyword_triggers()
_CALL_TRIGGERS: FrozenSet[str] = frozenset(
    r.trigger[:-2] for r in EXTRA_RULES if r.trigger.endswith("()")
)


def rules_for(what: str) -> List[ExtraRule]:
    """All rules that a reported import or call matches.

    A module path matches every prefix row, because importing a submodule imports its parent
    packages: `...idempotency.persistence.redis` needs both `redis` and `aws-sdk`.
    """
    matched = []
    for rule in EXTRA_RULES:
        if _is_exact_trigger(rule.trigger):
            if what == rule.trigger:
                matched.append(rule)
        elif what == rule.trigger or what.startswith(rule.trigger + "."):
            matched.append(rule)
    return matched


def extras_requirements(metadata_text: str) -> Dict[str, List[str]]:
    """Map each extra of a wheel to the distributions it requires, from the wheel's METADATA.

    Read from the metadata rather than written down so that the check follows whatever
    Powertools version is locked.
    """
    return distributions.extras_requirements(distributions.parse_metadata(metadata_text))


def _dotted(node: ast.AST) -> Optional[List[str]]:
    """`a.b.c` as ["a", "b", "c"], or None when the chain is not plain names."""
    parts: List[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return list(reversed(parts))


def _is_type_checking_test(test: ast.AST) -> bool:
    chain = _dotted(test)
    return chain is not None and chain[-1] == "TYPE_CHECKING"


def _is_powertools(module: str) -> bool:
    return module == POWERTOOLS_PACKAGE or module.startswith(POWERTOOLS_PACKAGE + ".")


class _ImportFinder(ast.NodeVisitor):
    """Collects Powertools imports, attribute uses of imported names, and trigger calls."""

    def __init__(self) -> None:
        self.found: List[Tuple[str, int, str]] = []
        self.calls: List[Tuple[str, int, str]] = []
        self.aliases: Dict[str, str] = {}
        self._type_checking_depth = 0

    def _add(self, what: str, line: int, kind: str) -> None:
        self.found.append((what, line, "type-checking" if self._type_checking_depth else kind))

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking_test(node.test):
            self._type_checking_depth += 1
            for child in node.body:
                self.visit(child)
            self._type_checking_depth -= 1
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if not _is_powertools(alias.name):
                continue
            self._add(alias.name, node.lineno, "import")
            if not self._type_checking_depth:
                bound = alias.asname or alias.name.split(".")[0]
                self.aliases[bound] = alias.name if alias.asname else bound

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or not node.module or not _is_powertools(node.module):
            return
        for alias in node.names:
            self._add(f"{node.module}.{alias.name}", node.lineno, "from")
            if alias.name != "*" and not self._type_checking_depth:
                self.aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"

    def visit_Attribute(self, node: ast.Attribute) -> None:
        chain = _dotted(node)
        if chain is None:
            self.generic_visit(node)
            return
        # Aliases are collected in a first pass (see powertools_imports), so uses above the
        # import statement in source order, e.g. inside functions, are still resolved.
        target = self.aliases.get(chain[0])
        if target is not None:
            self.found.append((".".join([target] + chain[1:]), node.lineno, "attribute"))

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = (
            func.attr
            if isinstance(func, ast.Attribute)
            else func.id
            if isinstance(func, ast.Name)
            else None
        )
        if name in _CALL_TRIGGERS:
            self.calls.append((f"{name}()", node.lineno, "call"))
        for keyword in node.keywords:
            values = _KEYWORD_TRIGGERS.get(keyword.arg or "")
            if values and isinstance(keyword.value, ast.Constant):
                text = f"{keyword.arg}={keyword.value.value!r}"
                if text.split("=", 1)[1] in values:
                    self.calls.append((text, keyword.value.lineno, "keyword"))
        self.generic_visit(node)


def _scan_tokens(source: str) -> Tuple[List[Tuple[str, int, str]], List[Tuple[str, int, str]]]:
    """Fallback for source the running interpreter cannot parse.

    Pants runs on CPython 3.9 while Lambda code targets 3.10+ (Powertools 3.x requires it), so
    a `match` statement or a PEP 701 f-string must not hide imports. Tokens still work there.
    """
    imports: List[Tuple[str, int, str]] = []
    calls: List[Tuple[str, int, str]] = []
    statement: List[tokenize.TokenInfo] = []
    depth = 0

    def flush() -> None:
        words = [t for t in statement if t.type in (tokenize.NAME, tokenize.OP)]
        text = [t.string for t in words]
        if len(text) >= 4 and text[0] == "from" and "import" in text:
            split = text.index("import")
            module = "".join(text[1:split])
            if _is_powertools(module):
                names = [w for w in text[split + 1 :] if w not in ("(", ")")]
                position = 0
                while position < len(names):
                    if names[position] not in (",", "as"):
                        imports.append((f"{module}.{names[position]}", words[0].start[0], "from"))
                    if position + 1 < len(names) and names[position + 1] == "as":
                        position += 3
                    else:
                        position += 1
        elif text and text[0] == "import":
            current: List[str] = []
            skip_alias = False
            for word in text[1:] + [","]:
                if word == ",":
                    module = "".join(current)
                    if _is_powertools(module):
                        imports.append((module, words[0].start[0], "import"))
                    current, skip_alias = [], False
                elif word == "as":
                    skip_alias = True
                elif not skip_alias:
                    current.append(word)
        for index, token in enumerate(statement):
            if token.type != tokenize.NAME:
                continue
            following = statement[index + 1 : index + 3]
            if token.string in _CALL_TRIGGERS and following and following[0].string == "(":
                calls.append((f"{token.string}()", token.start[0], "call"))
            if (
                token.string in _KEYWORD_TRIGGERS
                and len(following) == 2
                and following[0].string == "="
            ):
                value = following[1].string
                if following[1].type == tokenize.STRING:
                    try:
                        value = repr(ast.literal_eval(value))
                    except (ValueError, SyntaxError):
                        continue
                if value in _KEYWORD_TRIGGERS[token.string]:
                    calls.append((f"{token.string}={value}", token.start[0], "keyword"))

    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.OP and token.string in "([{":
                depth += 1
            elif token.type == tokenize.OP and token.string in ")]}":
                depth = max(depth - 1, 0)
            if token.type in (tokenize.NEWLINE, tokenize.ENDMARKER) or (
                token.type == tokenize.OP and token.string == ";" and depth == 0
            ):
                flush()
                statement = []
            elif token.type not in (
                tokenize.COMMENT,
                tokenize.NL,
                tokenize.INDENT,
                tokenize.DEDENT,
            ):
                statement.append(token)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        flush()
    return imports, calls


def powertools_imports(source: str, path: str) -> List[Tuple[str, int, str]]:
    """Every use of Powertools in one first-party file, as (what, line, kind), in line order.

    `what` is the imported module or symbol path (`from aws_lambda_powertools import Tracer`
    gives `aws_lambda_powertools.Tracer`), an attribute path reached through an imported name
    (`pt.Tracer` after `import aws_lambda_powertools as pt`), or a lazy-import trigger
    (`enable_validation=True`, `enable_swagger()`). Kinds: `import`, `from`, `attribute`,
    `keyword`, `call`, and `type-checking` for imports under `if TYPE_CHECKING:`, which never
    run. Triggers are reported only in files that import Powertools, to stay quiet elsewhere.
    Source this interpreter cannot parse falls back to a token scan that sees imports and
    triggers but not `TYPE_CHECKING` guards or attribute uses.
    """
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError:
        imports, calls = _scan_tokens(source)
    else:
        # Two passes: the first learns which names are bound to Powertools, so that the second
        # resolves `pt.Tracer` even where it appears above the import in source order.
        collector = _ImportFinder()
        collector.visit(tree)
        finder = _ImportFinder()
        finder.aliases = dict(collector.aliases)
        finder.visit(tree)
        imports, calls = finder.found, finder.calls
    if not imports:
        return []
    seen: Set[Tuple[str, int, str]] = set()
    result = []
    for item in sorted(imports + calls, key=lambda entry: (entry[1], entry[0])):
        if item not in seen:
            seen.add(item)
            result.append(item)
    return result


@dataclass(frozen=True)
class MissingExtra:
    """One problem: `path` line `line` uses `feature`, whose extra's distributions are absent."""

    path: str
    line: int
    what: str
    feature: str
    extra: str
    missing_distributions: Tuple[str, ...]

    def describe(self) -> str:
        return (
            f"{self.path}:{self.line}: {self.feature} (`{self.what}`) needs the Powertools extra "
            f"`{self.extra}`, but {', '.join(self.missing_distributions)} "
            f"{'is' if len(self.missing_distributions) == 1 else 'are'} not in the function ZIP, "
            f"its layers or the Lambda runtime. Use `{POWERTOOLS_DISTRIBUTION}[{self.extra}]`."
        )


class MissingPowertoolsExtraError(Exception):
    """Code of a Lambda target needs Powertools extras that would not be present in Lambda."""

    def __init__(self, target: str, problems: Iterable[MissingExtra], requirement: str) -> None:
        self.target = target
        self.problems: Tuple[MissingExtra, ...] = tuple(problems)
        self.requirement = requirement
        lines = [
            f"{target} would fail at cold start with ImportError: its code uses Powertools "
            f"features whose optional dependencies are not packaged."
        ]
        lines.extend(f"  - {problem.describe()}" for problem in self.problems)
        lines.append(
            f"Fix: change the {POWERTOOLS_DISTRIBUTION} requirement of the resolve this target "
            f"uses to `{requirement}` and run `pants generate-lockfiles`, or add the missing "
            f"distributions to one of its layers."
        )
        super().__init__("\n".join(lines))


def find_missing_extras(
    files: Mapping[str, str], metadata_text: str, available_distributions: Collection[str]
) -> List[MissingExtra]:
    """The problems `check_extras` raises for, for callers that want to warn instead.

    One problem per (file, extra), at its first use: a file that imports the parser twice has
    one thing to fix. An extra the metadata does not declare (an older Powertools without that
    feature) is skipped: the check cannot say what it would need.
    """
    requirements = extras_requirements(metadata_text)
    available = {normalize_name(name) for name in available_distributions}
    problems: List[MissingExtra] = []
    for path in sorted(files):
        reported: Set[str] = set()
        for what, line, kind in powertools_imports(files[path], path):
            if kind in IGNORED_KINDS:
                continue
            for rule in rules_for(what):
                if rule.extra in reported or rule.extra not in requirements:
                    continue
                missing = tuple(name for name in requirements[rule.extra] if name not in available)
                if missing:
                    reported.add(rule.extra)
                    problems.append(
                        MissingExtra(path, line, what, rule.feature, rule.extra, missing)
                    )
    return problems


def suggested_requirement(
    problems: Iterable[MissingExtra], declared_extras: Collection[str] = ()
) -> str:
    """`aws-lambda-powertools[...]` with the extras already declared plus the missing ones."""
    extras = {normalize_name(extra) for extra in declared_extras} | {
        problem.extra for problem in problems
    }
    return f"{POWERTOOLS_DISTRIBUTION}[{','.join(sorted(extras))}]"


def check_extras(
    files: Mapping[str, str],
    metadata_text: str,
    available_distributions: Collection[str],
    target: str,
    declared_extras: Collection[str] = (),
) -> None:
    """Fail the build when a function would import a Powertools extra that is not there.

    `files` maps first-party paths to source; `metadata_text` is the packaged Powertools
    wheel's METADATA; `available_distributions` are the distribution names in the function
    ZIP, its layers and the Lambda runtime (the caller decides, e.g. boto3 for `aws-sdk`);
    `declared_extras` are the extras already on the user's Powertools requirement, merged into
    the suggested fix so that following it does not drop one.
    """
    problems = find_missing_extras(files, metadata_text, available_distributions)
    if problems:
        raise MissingPowertoolsExtraError(
            target, problems, suggested_requirement(problems, declared_extras)
        )
