"""The `txaudit` command line: check, diff, report, action, rules, explain, serve, worker.

Thin by design: argument parsing and exit codes here, file and git I/O in `bot.cli.local`,
formats in `bot.cli.output` and `bot.cli.report`, the verdict in the engine (`rules.engine.audit`).
Exit status: 0 nothing at or above the fail level, 1 findings at or above it, 2 usage or
configuration error (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from bot.cli import local
from bot.cli.cache import CACHE_DIR_ENV, ResultCache
from bot.cli.cache import default_directory as default_cache_directory
from bot.cli.local import UsageError
from bot.cli.output import (
    FORMATS,
    Run,
    finding_key,
    format_github,
    format_json,
    format_sarif,
    format_text,
    summary_line,
)
from bot.cli.report import build_report
from rules.engine.config import FAIL_ON, FILTERS, Config, ConfigError, load_config_file
from rules.engine.model import KNOWN_RULE_IDS, FileResult, Finding, Severity

PROG = "txaudit"
#: Set to get a traceback instead of the one-line message on an unexpected error.
DEBUG_ENV = "TXAUDIT_DEBUG"


def _version() -> str:
    from importlib import metadata  # ~25 ms of imports: only when a version is shown

    try:
        return metadata.version("txaudit")
    except metadata.PackageNotFoundError:
        return "0+unknown"


class _VersionAction(argparse.Action):
    """``--version``: the installed version, looked up only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        sys.stdout.write(f"{PROG} {_version()}\n")
        parser.exit()


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (raised, so `main` decides the exit)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _add_common(parser: argparse.ArgumentParser, *, formats: bool = True) -> None:
    parser.add_argument("--config", metavar="FILE", help="config file (default: discovered)")
    parser.add_argument("--select", metavar="ID,...", help="only these rules (IDs or prefixes)")
    parser.add_argument("--ignore", metavar="ID,...", help="leave out these rules")
    if formats:
        parser.add_argument("--format", choices=FORMATS, default="text", help="output format")
    parser.add_argument(
        "--fail-on", choices=FAIL_ON, help="lowest severity that fails the run (default: config)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print findings only")


def _add_filter(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--filter",
        choices=FILTERS,
        help="which findings count as changed: on added lines, inside the diff, or the "
        "whole file (default: config)",
    )


def _add_cache(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-cache", action="store_true", help="neither read nor write the result cache"
    )
    parser.add_argument(
        "--cache-dir",
        metavar="DIR",
        help=f"result cache folder (default: ${CACHE_DIR_ENV}, else ~/.cache/txaudit)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Audit SQLAlchemy transaction and ORM-only rules.")
    parser.add_argument("--version", action=_VersionAction, help="show the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    check = commands.add_parser("check", help="audit whole files and folders")
    check.add_argument("paths", nargs="*", metavar="PATH", help="files or folders (default: .)")
    _add_common(check)
    check.add_argument("--fix", action="store_true", help="apply autofixes (TX001) in place")
    check.add_argument("-j", "--jobs", type=int, metavar="N", help="worker processes")
    _add_cache(check)

    diff = commands.add_parser("diff", help="audit only the lines a git diff adds")
    diff.add_argument(
        "--base", metavar="REV", help="default: merge base with origin/HEAD|main|master"
    )
    diff.add_argument("--head", metavar="REV", help="default: the working tree")
    _add_common(diff)
    _add_filter(diff)

    report = commands.add_parser("report", help="write a Markdown audit report of a tree")
    report.add_argument("path", nargs="?", default=".", metavar="PATH")
    _add_common(report, formats=False)
    report.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE")
    report.add_argument("-j", "--jobs", type=int, metavar="N", help="worker processes")
    _add_cache(report)

    action = commands.add_parser(
        "action", help="what the GitHub Action runs: audit the event's range, report to Actions"
    )
    action.add_argument("--config", metavar="FILE", help="config file (default: the base's)")
    action.add_argument(
        "--fail-on", choices=FAIL_ON, help="lowest severity that fails the job (default: config)"
    )
    _add_filter(action)
    action.add_argument("--sarif", metavar="FILE", help="also write SARIF 2.1.0 to FILE")
    action.set_defaults(select=None, ignore=None)

    commands.add_parser("rules", help="list the rules")
    explain = commands.add_parser("explain", help="print a rule's documentation")
    explain.add_argument("rule_id", metavar="ID")
    commands.add_parser("serve", help="run the GitHub App webhook server")
    commands.add_parser("worker", help="run a shared-mode worker (needs REDIS_URL)")
    return parser


# --- helpers -----------------------------------------------------------------------------


def _registry() -> Any:
    from rules.engine import registry

    return registry


def _known_ids() -> tuple[str, ...]:
    try:
        ids = tuple(info.id for info in _registry().all_rules())
    except (AttributeError, NotImplementedError):
        ids = ()
    return tuple(dict.fromkeys((*KNOWN_RULE_IDS, *ids)))


def _rule_ids(option: str, value: str | None) -> tuple[str, ...]:
    """Parse `--select/--ignore`: IDs or prefixes (`ORM`); unknown ones are a usage error."""
    if value is None:
        return ()
    wanted = tuple(part.strip().upper() for part in value.split(",") if part.strip())
    known = _known_ids()
    unknown = [w for w in wanted if not any(k.startswith(w) for k in known)]
    if unknown:
        raise UsageError(
            f"{option}: unknown rule ID{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
            f"(valid: {', '.join(known)})"
        )
    return wanted


def _rule_selector(args: argparse.Namespace) -> Callable[[str], bool] | None:
    """Whether `--select`/`--ignore` keep a rule ID; None when neither is given."""
    select = _rule_ids("--select", args.select)
    ignore = _rule_ids("--ignore", args.ignore)
    if not select and not ignore:
        return None

    def keeps(rule_id: str) -> bool:
        if select and not rule_id.startswith(select):
            return False
        return not rule_id.startswith(ignore) if ignore else True

    return keeps


def _finding_filter(args: argparse.Namespace) -> Callable[[Finding], bool]:
    keeps = _rule_selector(args)

    def wanted(finding: Finding) -> bool:
        if finding.severity is Severity.OFF:
            return False
        return keeps is None or keeps(finding.rule)

    return wanted


def _with_fail_on(config: Config, fail_on: str | None) -> Config:
    return dataclasses.replace(config, fail_on=fail_on) if fail_on else config


def _with_selection(config: Config, args: argparse.Namespace) -> Config:
    """`config` with the rules that `--select`/`--ignore` leave out turned off everywhere, so
    that they do not run at all (as in ruff); `_finding_filter` still filters the findings."""
    keeps = _rule_selector(args)
    if keeps is None:
        return config
    left_out = {rule_id for rule_id in _known_ids() if not keeps(rule_id)}
    overrides = tuple(
        dataclasses.replace(o, rules={k: v for k, v in o.rules.items() if k not in left_out})
        for o in config.overrides
    )
    rules = {**config.rules, **dict.fromkeys(left_out, Severity.OFF)}
    return dataclasses.replace(config, rules=rules, overrides=overrides)


def exit_code(findings: Sequence[Finding], config: Config) -> int:
    """1 when a finding is at or above `config.fail_on`, else 0."""
    if config.fail_on == "never":
        return 0
    threshold = Severity(config.fail_on)
    return 1 if any(f.severity.at_least(threshold) for f in findings) else 0


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _note(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


def _emit(run: Run, args: argparse.Namespace, src_root: Path) -> None:
    fmt = args.format
    if fmt == "json":
        _write(format_json(run))
    elif fmt == "sarif":
        rules = _registry().all_rules()
        uri = src_root.resolve().as_uri().rstrip("/") + "/"
        _write(format_sarif(run, rules, version=_version(), src_root=uri))
    elif fmt == "github":
        _write(format_github(run))
        if not args.quiet:  # stdout holds workflow commands only
            print(summary_line(run), file=sys.stderr)
    else:
        _write(format_text(run, quiet=args.quiet))


def _guide_base(root: Path, relative_to: Path) -> str | None:
    base = local.display_path(root.resolve(), relative_to.resolve())
    return None if base == "." else base


def _audit_tree(
    paths: Sequence[str], args: argparse.Namespace, cwd: Path
) -> tuple[local.Project, list[local.SourceFile], list[FileResult]]:
    config_path = local.check_config_path(args.config)
    for raw in paths:  # before reading any config: a typo in a path is the likelier problem
        if not Path(raw).exists():
            raise UsageError(f"{raw}: no such file or directory")
    project = local.load_project(Path(paths[0]), config_path, cwd)
    config = _with_selection(_with_fail_on(project.config, args.fail_on), args)
    project = dataclasses.replace(project, config=config)
    files = local.discover(paths, project, cwd)
    cache = None
    if not args.no_cache and files:
        directory = Path(args.cache_dir) if args.cache_dir else default_cache_directory()
        cache = ResultCache.open(directory, project.root, project.config)
    results = local.audit_files(
        files, project.config, root=project.root, jobs=getattr(args, "jobs", None), cache=cache
    )
    return project, files, results


# --- commands ----------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    cwd = Path.cwd()
    paths = args.paths or ["."]
    wanted = _finding_filter(args)
    project, files, results = _audit_tree(paths, args, cwd)
    if not files:
        _note(f"no Python files to audit in {', '.join(paths)} (after paths.include/exclude)")
    fixed = 0
    if args.fix:
        fixable = [
            i
            for i, result in enumerate(results)
            if any(f.fix is not None and wanted(f) for f in result.findings)
        ]
        index = local.index_for([files[i].rel for i in fixable], project.root, project.config)
        for i in fixable:
            results[i], count = local.fix_file(
                files[i], results[i], project.config, wanted=wanted, project=index
            )
            fixed += count
    findings = sorted((f for r in results for f in r.findings if wanted(f)), key=finding_key)
    run = Run(
        results=tuple(results),
        findings=tuple(findings),
        config=project.config,
        guide_base=_guide_base(project.root, cwd),
        fixed=fixed,
    )
    if files or args.format != "text":
        _emit(run, args, cwd)
    return exit_code(findings, project.config)


def _audit_diff(
    args: argparse.Namespace, base: str | None, head: str | None, cwd: Path
) -> local.DiffAudit:
    """Audit the lines that `head` (None: the working tree) adds to its merge base with `base`."""
    from bot.review.patch import on_changed_line  # the app's own test, so both agree

    wanted = _finding_filter(args)
    root = local.repo_root(cwd)
    label, base_sha = local.resolve_base(base, head, root)
    config_path = local.check_config_path(args.config)
    config = load_config_file(config_path) if config_path else local.config_at(base_sha, root)
    config = _with_selection(_with_fail_on(config, args.fail_on), args)
    if args.filter:
        config = dataclasses.replace(config, filter=args.filter)
    mode = config.filter
    changed = [
        c
        for c in local.changed_files(
            base_sha, head, root, context=3 if mode == "diff_context" else 0
        )
        if config.includes(c.path)
    ]
    results: list[FileResult] = []
    findings: list[Finding] = []
    index = local.index_for([c.path for c in changed], root, config, rev=head)
    for change in changed:
        try:
            source = local.read_at(change.path, head, root)
        except OSError as exc:
            results.append(FileResult(path=change.path, error=f"cannot read: {exc}"))
            continue
        result = local.audit_bytes(source, change.path, config, index)
        results.append(result)
        findings += [
            f for f in result.findings if wanted(f) and on_changed_line(f, change.patch, mode)
        ]
    return local.DiffAudit(
        root=root,
        label=label,
        base_sha=base_sha,
        head=head,
        config=config,
        changed=tuple(changed),
        results=tuple(results),
        findings=tuple(sorted(findings, key=finding_key)),
    )


def cmd_diff(args: argparse.Namespace) -> int:
    audit = _audit_diff(args, args.base, args.head, Path.cwd())
    head = args.head or "the working tree"
    note = (
        f"Diff of {head} against {audit.label} (merge base {audit.base_sha[:10]}), "
        f"filter: {audit.config.filter}."
    )
    run = Run(
        results=audit.results,
        findings=audit.findings,
        config=audit.config,
        notes=(note,),
    )
    _emit(run, args, audit.root)
    return exit_code(audit.findings, audit.config)


def cmd_action(args: argparse.Namespace) -> int:
    from bot.cli import action

    env = action.ActionsEnv.from_environ(os.environ)
    span = action.event_range(env, env.event())
    if span.head is None:
        return action.report_nothing(env, span, sys.stdout)
    cwd = Path.cwd()
    action.fetch_missing(span, local.repo_root(cwd))
    audit = _audit_diff(args, span.base, span.head, cwd)
    return action.report(
        audit,
        env,
        span,
        sarif_path=Path(args.sarif).absolute() if args.sarif else None,
        rules=_registry().all_rules(),
        version=_version(),
        out=sys.stdout,
        err=sys.stderr,
    )


def cmd_report(args: argparse.Namespace) -> int:
    cwd = Path.cwd()
    wanted = _finding_filter(args)
    project, files, results = _audit_tree([args.path], args, cwd)
    if not files:
        _note(f"no Python files to audit in {args.path} (after paths.include/exclude)")
    findings = sorted((f for r in results for f in r.findings if wanted(f)), key=finding_key)
    output = Path(args.output) if args.output else None
    link_dir = output.absolute().parent if output else cwd

    def guide(rule_id: str) -> str | None:
        from rules.engine.guides import guide_link

        return guide_link(rule_id, project.config, blob_base=_guide_base(project.root, link_dir))

    try:
        names = {info.id: info.name for info in _registry().all_rules()}
    except (AttributeError, NotImplementedError):
        names = {}
    text = build_report(
        results, findings, project.config, target=args.path, guide=guide, names=names
    )
    if output is None:
        _write(text)
    else:
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{args.output}: cannot write the report: {exc.strerror}") from None
        if not args.quiet:
            _note(f"wrote the report of {len(results)} files to {args.output}")
    return exit_code(findings, project.config)


def cmd_rules(args: argparse.Namespace) -> int:
    rows = [
        (info.id, info.name, info.severity.value, "yes" if info.autofix else "", info.summary)
        for info in _registry().all_rules()
    ]
    header = ("ID", "NAME", "SEVERITY", "FIX", "SUMMARY")
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(4)]
    for row in (header, *rows):
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:4])]
        _write("  ".join([*cells, row[4]]).rstrip() + "\n")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    info = _registry().get_rule(args.rule_id)
    if info is None:
        valid = ", ".join(i.id for i in _registry().all_rules())
        raise UsageError(f"unknown rule '{args.rule_id}' (valid IDs: {valid})")
    autofix = "yes" if info.autofix else "no"
    header = (
        f"# {info.id} {info.name}\n\nDefault severity: {info.severity.value}. Autofix: {autofix}."
    )
    _write(f"{header}\n\n{info.doc.strip()}\n")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from bot.app.server import run
    except ImportError as exc:
        raise UsageError(f"the app server is not available: {exc}") from None
    run()  # returns when the server stops; exits 2 itself on bad settings
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    try:
        from bot.app.worker import run
    except ImportError as exc:
        raise UsageError(f"the app worker is not available: {exc}") from None
    run()  # returns when the worker stops; exits 2 itself on bad settings
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "check": cmd_check,
    "diff": cmd_diff,
    "report": cmd_report,
    "action": cmd_action,
    "rules": cmd_rules,
    "explain": cmd_explain,
    "serve": cmd_serve,
    "worker": cmd_worker,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run `txaudit` with `argv` (default: `sys.argv[1:]`); return the exit status."""
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except SystemExit as exc:  # --help / --version
        return exc.code if isinstance(exc.code, int) else 0
    except (UsageError, ConfigError) as exc:
        _note(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        _note("interrupted")
        return 130
    except BrokenPipeError:  # `txaudit check | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as exc:
        if os.environ.get(DEBUG_ENV):
            raise
        kind = type(exc).__name__
        _note(f"error: internal error: {kind}: {exc} (set {DEBUG_ENV}=1 for a traceback)")
        return 2
