"""The `gradschool` command: dev server, migrations, catalog, users, tokens, processes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from service.config import load_settings
from service.data.session import session_scope
from service.errors import AppError

DEMO_EMAIL = "demo@gradschool.local"
DEMO_PASSWORD = "learn-autograd"


def _use_data_dir(data_dir: str | None) -> None:
    if data_dir:
        os.environ["GRADSCHOOL_DATA_DIR"] = str(Path(data_dir).resolve())


@click.group()
@click.option(
    "--data-dir", envvar="GRADSCHOOL_DATA_DIR", help="Where the embedded defaults keep their data."
)
def main(data_dir: str | None) -> None:
    """gradschool: grading of gradient exercises against PyTorch autograd."""
    _use_data_dir(data_dir)


@main.command()
def migrate() -> None:
    """Migrate the database to the newest schema."""
    from service.data.migrate import upgrade

    upgrade(load_settings(dev=_dev()).database_url)
    click.echo("database migrated")


@main.command("migrate-and-load")
@click.pass_context
def migrate_and_load(ctx: click.Context) -> None:
    """Migrate, then load the built-in catalog (the deployment's one-shot job)."""
    ctx.invoke(migrate)
    ctx.invoke(catalog_load)


def _dev() -> bool:
    return os.environ.get("GRADSCHOOL_DEV") == "1" or not os.environ.get("DATABASE_URL")


@main.group()
def catalog() -> None:
    """The built-in exercise catalog."""


@catalog.command("load")
def catalog_load() -> None:
    """Load the built-in catalog; a changed exercise becomes a new version."""
    from exercises.catalog import load_builtin_catalog
    from service import hotcache
    from service.app import share_cache_changes
    from service.catalog import sync_catalog

    settings = load_settings(dev=_dev())
    share_cache_changes(settings)  # running web processes drop the exercises they cached
    with session_scope(settings.database_url) as db:
        report = sync_catalog(db, load_builtin_catalog())
    hotcache.wait_for_announcements()
    click.echo(
        f"catalog: {len(report.created)} created, {len(report.updated)} updated, "
        f"{len(report.unchanged)} unchanged"
    )


@main.group()
def users() -> None:
    """Users."""


@users.command("create")
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--role", type=click.Choice(["learner", "instructor", "admin"]), default="learner")
def users_create(email: str, password: str, role: str) -> None:
    """Create a user."""
    from service.users import create_user

    try:
        with session_scope(load_settings(dev=_dev()).database_url) as db:
            user = create_user(db, email, password, role)
            click.echo(f"created {role} {user.email} (id {user.id})")
    except AppError as err:
        raise click.ClickException(err.detail) from err


@main.group()
def tokens() -> None:
    """API tokens."""


@tokens.command("create")
@click.argument("email")
@click.option("--name", default="cli", help="A name to recognise the token by.")
@click.option("--days", default=90, type=int, help="Days until it expires (0: never).")
def tokens_create(email: str, name: str, days: int) -> None:
    """Create an API token and print it (it is shown only once)."""
    from service.users import create_token, find_user

    try:
        with session_scope(load_settings(dev=_dev()).database_url) as db:
            click.echo(create_token(db, find_user(db, email), name=name, days=days or None))
    except AppError as err:
        raise click.ClickException(err.detail) from err


@main.group()
def exercises() -> None:
    """Exercise files."""


@exercises.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
def exercises_validate(paths: tuple[str, ...]) -> None:
    """Validate exercise files; every problem is reported with its field."""
    from exercises.validate import validate_path

    failed = 0
    for path in paths:
        problems = validate_path(Path(path))
        for problem in problems:
            click.echo(f"{path}: {problem}", err=True)
        failed += bool(problems)
        if not problems:
            click.echo(f"{path}: ok")
    if failed:
        sys.exit(1)


@main.command()
@click.option("--bind", default="0.0.0.0:8000", envvar="GRADSCHOOL_BIND")
@click.option("--workers", default=2, type=int, envvar="WEB_CONCURRENCY")
@click.option("--threads", default=4, type=int, envvar="WEB_THREADS")
def web(bind: str, workers: int, threads: int) -> None:
    """Serve the portal and API under granian (threads per process: requests wait on the DB)."""
    from service.processes import web_argv

    argv = web_argv(bind, workers, threads)
    os.execvp(argv[0], argv)


@main.command()
@click.option("--queues", default="numeric,code", help="Comma-separated queues to consume.")
@click.option("--concurrency", default=1, type=int)
@click.option("--beat/--no-beat", default=False, help="Also run the sweeper's schedule here.")
def worker(queues: str, concurrency: int, beat: bool) -> None:
    """Run a grading worker (Celery) on the given queues."""
    from service.processes import worker_argv

    argv = worker_argv(queues, concurrency, beat, load_settings(dev=_dev()).data_dir)
    os.execvp(argv[0], argv)


@main.command()
def sweeper() -> None:
    """Run the sweeper's schedule (Celery beat)."""
    from service.processes import beat_argv

    argv = beat_argv(load_settings(dev=_dev()).data_dir)
    os.execvp(argv[0], argv)


@main.command()
@click.option("--port", default=5000, type=int, help="Port of the portal and API.")
@click.option("--data-dir", "dev_data_dir", default=None, help="Where everything is written.")
@click.option("--host", default="127.0.0.1")
def dev(port: int, dev_data_dir: str | None, host: str) -> None:
    """Migrate, load the catalog, create a demo learner, and run web + worker until Ctrl-C."""
    from service.processes import run_dev

    _use_data_dir(dev_data_dir)
    os.environ["GRADSCHOOL_DEV"] = "1"
    sys.exit(run_dev(host, port))


if __name__ == "__main__":
    main()
