"""The worker's side of cost control: the engine's UsageLedger and SpendGate ports.

Before each LLM call, `reserve` holds the call's maximum cost against every budget that
covers it (the organisation, the run's workspace, its caller, its flow), all or none, in
one transaction: the budgets' current period rows are locked in id order, then each is
raised by a conditional UPDATE (spent + reserved + amount <= limit), never read-then-write.
Spend can therefore pass a limit only by what a call costs beyond its held maximum (none:
the maximum is an upper bound) or by holds that expired with their dead workers.

`record` writes the call's usage row and, in the same transaction, the day's rollup, the
spend of every covering budget (settling the call's holds) and the alerts of the thresholds
the spend crossed: one row per (budget, period, threshold) ever, with its in-app notice and
its email and webhook deliveries (an outbox the alert courier empties, billing/courier.py).
A step that runs again after a crash records the same call index, which changes nothing.

Plain SQL (the worker runs no ORM inside runs), through a small pool of its own. Queries are
put together from the constant fragments below only; every value is a parameter."""

import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from psycopg import AsyncConnection

import engine
from flows.adapters import PooledAdapter, root_run_id

log = logging.getLogger("fireflow.billing")

# A hold outlives any LLM call; one left by a dead worker is freed after this.
HOLD_MINUTES = 30
# Wakes the alert courier (billing/courier.py) when an alert is written.
ALERT_CHANNEL = "fireflow_alerts"
# Who is told of a budget alert by email: the members who watch costs.
COST_ROLES = ("owner", "admin", "billing")

# The budgets covering a call of a run (org, workspace, caller and flow of the run, and the
# mini-app a visitor started it through).
_COVERING_TEMPLATE = (
    "b.org_id = {org} AND b.enabled AND (b.scope = 'org' "
    "OR (b.scope = 'workspace' AND b.workspace_id = {ws}) "
    "OR (b.scope = 'user' AND b.user_id = {user}) "
    "OR (b.scope = 'flow' AND b.flow_id = {flow}) "
    "OR (b.scope = 'app' AND b.app_id = {app}))"
)
_COVERING = _COVERING_TEMPLATE.format(
    org="%(org)s", ws="%(ws)s", user="%(user)s", flow="%(flow)s", app="%(app)s"
)
_CURRENT = "date_trunc(b.period, now(), 'UTC')"
_PERIOD_COLUMNS = (
    "p.id, b.id, b.name, b.scope, b.period, b.limit_micros, b.thresholds, p.period_start, b.action"
)
# The run's tenant, workspace, flow, caller and mini-app, and the kill switch that halts it
# now (its workspace's or its organisation's): `s` below.
_SCOPE = (
    "SELECT w.org_id, r.workspace_id, r.flow_id, r.caller_id, k.reason, kw.name AS halted, "
    "a.app_id FROM flows_run r JOIN tenants_workspace w ON w.id = r.workspace_id "
    "LEFT JOIN miniapps_apprun a ON a.run_id = r.id "
    "LEFT JOIN LATERAL (SELECT reason, workspace_id FROM billing_killswitch "
    "  WHERE org_id = w.org_id AND lifted_at IS NULL "
    "  AND (workspace_id IS NULL OR workspace_id = r.workspace_id) "
    "  ORDER BY workspace_id NULLS FIRST LIMIT 1) k ON true "
    "LEFT JOIN tenants_workspace kw ON kw.id = k.workspace_id "
    "WHERE r.id = %(root)s"
)
# The scope and the current period of every budget covering it, in one read (one row with
# the budget columns NULL when none does).
_SCOPE_AND_PERIODS = (
    f"WITH s AS ({_SCOPE}) SELECT s.*, {_PERIOD_COLUMNS} FROM s "  # noqa: S608 (constants)
    "LEFT JOIN billing_budget b ON "
    + _COVERING_TEMPLATE.format(
        org="s.org_id", ws="s.workspace_id", user="s.caller_id", flow="s.flow_id", app="s.app_id"
    )
    + f" LEFT JOIN billing_budgetperiod p ON p.budget_id = b.id AND p.period_start = {_CURRENT}"
)


def dollars(micros: int) -> str:
    """Micro-dollars as dollars: cents, or four decimals under a dollar (calls are cheap)."""
    return f"${micros / 1_000_000:,.2f}" if micros >= 1_000_000 else f"${micros / 1_000_000:.4f}"


class CostControl(PooledAdapter):
    """engine.UsageLedger and engine.SpendGate, over the same pool."""

    def __init__(self, database_url: str) -> None:
        super().__init__(database_url, max_size=4)

    async def _scope(
        self, conn: AsyncConnection[Any], run_id: str
    ) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """The run's scope (see `_SCOPE`; NodeError if a kill switch halts it now) and the
        current periods of the budgets covering it, in one read; None for a run the platform
        did not start."""
        root = root_run_id(run_id)
        if root is None:
            return None
        rows = await (await conn.execute(_SCOPE_AND_PERIODS, {"root": root})).fetchall()
        if not rows:
            return None
        row = rows[0]
        if row[4] is not None:
            where = f"workspace '{row[5]}'" if row[5] else "the organisation"
            raise engine.NodeError(
                f"halted by the kill switch on {where}: {row[4]} (an admin lifts it in the console)"
            )
        scope = {"org": row[0], "ws": row[1], "flow": row[2], "user": row[3], "app": row[6]}
        covering = [r[7:] for r in rows if r[8] is not None]
        if any(r[0] is None for r in covering):  # a period has just begun: create its rows
            return scope, await _current_periods(conn, scope)
        return scope, [_period(r) for r in covering]

    # engine.SpendGate ---------------------------------------------------------------------

    async def reserve(
        self,
        run_id: str,
        node_id: str,
        call_index: int,
        meta: Mapping[str, Any],
        *,
        provider: str,
        model: str,
        max_cost_micros: int,
        approved: bool = False,
    ) -> None:
        amount = max(int(max_cost_micros), 0)
        pool = await self._open()
        async with pool.connection() as conn:
            found = await self._scope(conn, run_id)
            if found is None:
                return  # not a platform run (engine tests): no budgets apply
            _, periods = found
            if not periods:
                return  # no budget covers the call: no transaction to hold it in
            # The limits are checked by the UPDATEs, under the periods' locks.
            async with conn.transaction():
                ids = [p["id"] for p in periods]
                await _lock(conn, ids)
                # Holds that expired (their worker died) and this call's own earlier hold (its
                # step runs again) are freed before the call is held anew.
                await _free_holds(
                    conn,
                    f"period_id = ANY(%(ids)s) AND (expires_at < now() OR ({_THIS_CALL}))",
                    {"ids": ids, **_call(run_id, node_id, call_index)},
                )
                for period in periods:
                    cursor = await conn.execute(
                        "UPDATE billing_budgetperiod SET reserved_micros = reserved_micros + %s "
                        "WHERE id = %s AND spent_micros + reserved_micros + %s <= %s",
                        (amount, period["id"], max(amount, 1), period["limit"]),
                    )
                    if cursor.rowcount == 0:
                        refusal = await _refusal(conn, period, amount, provider, model)
                        if period["action"] != "pause":
                            raise engine.NodeError(refusal)
                        if not approved:
                            raise engine.BudgetPaused(refusal)
                        # A person approved spend past this budget for the step: held all the same.
                        await conn.execute(
                            "UPDATE billing_budgetperiod "
                            "SET reserved_micros = reserved_micros + %s WHERE id = %s",
                            (amount, period["id"]),
                        )
                await conn.cursor().executemany(
                    "INSERT INTO billing_budgethold (period_id, run_key, node_id, call_index, "
                    "amount_micros, expires_at) VALUES (%s, %s, %s, %s, %s, "
                    "now() + make_interval(mins => %s))",
                    [(pid, run_id, node_id, call_index, amount, HOLD_MINUTES) for pid in ids],
                )

    async def release(self, run_id: str, node_id: str, call_index: int) -> None:
        pool = await self._open()
        async with pool.connection() as conn, conn.transaction():
            held = await _held_periods(conn, run_id, node_id, call_index)
            if not held:
                return
            await _lock(conn, held)
            await _free_holds(conn, _THIS_CALL, _call(run_id, node_id, call_index))

    # engine.UsageLedger -------------------------------------------------------------------

    async def record(
        self,
        run_id: str,
        node_id: str,
        call_index: int,
        meta: Mapping[str, Any],
        usage: Mapping[str, Any],
    ) -> None:
        root = root_run_id(run_id)
        if root is None:
            log.warning("usage of run %s not recorded: not a platform run", run_id)
            return
        provider = str(usage.get("provider", ""))[:50]
        model = str(usage.get("model", ""))[:200]
        tokens_in, tokens_out = (
            _count(usage.get("input_tokens")),
            _count(usage.get("output_tokens")),
        )
        cost = _count(usage.get("cost_micros"))
        pool = await self._open()
        async with pool.connection() as conn, conn.transaction():
            cursor = await conn.execute(
                "INSERT INTO flows_llmusage (run_id, run_key, node_id, call_index, "
                "organization_id, workspace_id, flow_id, flow_owner_id, caller_id, provider, "
                "model, input_tokens, output_tokens, cached_tokens, cost_micros, created_at) "
                "SELECT r.id, %s, %s, %s, w.org_id, r.workspace_id, r.flow_id, "
                "r.flow_owner_id, r.caller_id, %s, %s, %s, %s, %s, %s, now() "
                "FROM flows_run r JOIN tenants_workspace w ON w.id = r.workspace_id "
                "WHERE r.id = %s "
                "ON CONFLICT (run_key, node_id, call_index) DO NOTHING "
                "RETURNING organization_id, workspace_id, flow_id, caller_id, "
                "(SELECT a.app_id FROM miniapps_apprun a WHERE a.run_id = flows_llmusage.run_id)",
                (
                    run_id,
                    node_id,
                    call_index,
                    provider,
                    model,
                    tokens_in,
                    tokens_out,
                    _count(usage.get("cached_tokens")),
                    cost,
                    root,
                ),
            )
            row = await cursor.fetchone()
            if row is None:
                log.info(
                    "usage %s/%s#%d already recorded or run unknown", run_id, node_id, call_index
                )
                return
            scope = {"org": row[0], "ws": row[1], "flow": row[2], "user": row[3], "app": row[4]}
            await conn.execute(
                "INSERT INTO billing_usagerollup (org_id, workspace_id, flow_id, user_id, "
                "provider, model, day, calls, input_tokens, output_tokens, cost_micros) "
                "VALUES (%s, %s, %s, %s, %s, %s, (now() AT TIME ZONE 'UTC')::date, 1, %s, %s, %s) "
                "ON CONFLICT (org_id, workspace_id, flow_id, user_id, provider, model, day) "
                "DO UPDATE SET calls = billing_usagerollup.calls + 1, "
                "input_tokens = billing_usagerollup.input_tokens + EXCLUDED.input_tokens, "
                "output_tokens = billing_usagerollup.output_tokens + EXCLUDED.output_tokens, "
                "cost_micros = billing_usagerollup.cost_micros + EXCLUDED.cost_micros",
                (row[0], row[1], row[2], row[3], provider, model, tokens_in, tokens_out, cost),
            )
            await _settle(conn, scope, _call(run_id, node_id, call_index), cost)


def _count(value: Any) -> int:
    return max(int(value), 0) if isinstance(value, int | float) else 0


_THIS_CALL = "run_key = %(run)s AND node_id = %(node)s AND call_index = %(call)s"


def _call(run_id: str, node_id: str, call_index: int) -> dict[str, Any]:
    return {"run": run_id, "node": node_id, "call": call_index}


async def _current_periods(
    conn: AsyncConnection[Any], scope: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The current period of every budget covering the call; the rows of a period that has
    just begun are created first (one read when they exist, as they mostly do)."""
    select = (
        f"SELECT {_PERIOD_COLUMNS} FROM billing_budget b LEFT JOIN billing_budgetperiod p "  # noqa: S608
        f"ON p.budget_id = b.id AND p.period_start = {_CURRENT} WHERE {_COVERING}"
    )
    rows = await (await conn.execute(select, scope)).fetchall()
    if any(r[0] is None for r in rows):
        await conn.execute(
            "INSERT INTO billing_budgetperiod (budget_id, period_start, spent_micros, "  # noqa: S608
            f"reserved_micros) SELECT b.id, {_CURRENT}, 0, 0 FROM billing_budget b "
            f"WHERE {_COVERING} ON CONFLICT (budget_id, period_start) DO NOTHING",
            scope,
        )
        rows = await (await conn.execute(select, scope)).fetchall()
    return [_period(r) for r in rows]


def _period(r: Sequence[Any]) -> dict[str, Any]:
    """A row of `_PERIOD_COLUMNS`."""
    return {
        "id": r[0],
        "budget": r[1],
        "name": r[2],
        "scope": r[3],
        "period": r[4],
        "limit": r[5],
        "thresholds": r[6],
        "start": r[7],
        "action": r[8],
    }


async def _lock(conn: AsyncConnection[Any], period_ids: Sequence[int]) -> None:
    """Lock budget periods in id order (every writer does, so none deadlocks)."""
    await conn.execute(
        "SELECT id FROM billing_budgetperiod WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
        (list(period_ids),),
    )


async def _held_periods(
    conn: AsyncConnection[Any], run_id: str, node_id: str, call_index: int
) -> list[int]:
    cursor = await conn.execute(
        f"SELECT period_id FROM billing_budgethold WHERE {_THIS_CALL}",  # noqa: S608
        _call(run_id, node_id, call_index),
    )
    return [r[0] for r in await cursor.fetchall()]


async def _free_holds(conn: AsyncConnection[Any], where: str, params: Mapping[str, Any]) -> None:
    """Delete holds (their periods locked by the caller) and take them off the reserve."""
    await conn.execute(
        f"WITH gone AS (DELETE FROM billing_budgethold WHERE {where} "  # noqa: S608
        "RETURNING period_id, amount_micros) "
        "UPDATE billing_budgetperiod p SET reserved_micros = p.reserved_micros - g.total "
        "FROM (SELECT period_id, sum(amount_micros) AS total FROM gone GROUP BY period_id) g "
        "WHERE p.id = g.period_id",
        params,
    )


async def _refusal(
    conn: AsyncConnection[Any], period: Mapping[str, Any], amount: int, provider: str, model: str
) -> str:
    cursor = await conn.execute(
        "SELECT spent_micros, reserved_micros FROM billing_budgetperiod WHERE id = %s",
        (period["id"],),
    )
    row = await cursor.fetchone()
    spent, held = (row[0], row[1]) if row is not None else (0, 0)
    in_flight = f", {dollars(held)} held by calls in flight" if held else ""
    return (
        f"budget exceeded: '{period['name']}' ({period['scope']}, per {period['period']}) has "
        f"{dollars(spent)} of {dollars(period['limit'])} spent{in_flight}; this call to "
        f"{provider}/{model} may cost up to {dollars(amount)}. Raise the budget's limit or "
        "wait for its next period."
    )


async def _settle(
    conn: AsyncConnection[Any], scope: Mapping[str, Any], call: Mapping[str, Any], cost: int
) -> None:
    """The call's spend on every budget covering it, its holds freed, thresholds alerted."""
    held = await _held_periods(conn, call["run"], call["node"], call["call"])
    periods = await _current_periods(conn, scope) if cost > 0 else []
    if not held and not periods:
        return
    await _lock(conn, sorted({*held, *(p["id"] for p in periods)}))
    if held:
        await _free_holds(conn, _THIS_CALL, call)
    if not periods:
        return
    cursor = await conn.execute(
        "UPDATE billing_budgetperiod SET spent_micros = spent_micros + %s WHERE id = ANY(%s) "
        "RETURNING id, spent_micros",
        (cost, [p["id"] for p in periods]),
    )
    spent = dict(await cursor.fetchall())
    alerted = False
    for period in periods:
        after = spent[period["id"]]
        for threshold in sorted({int(t) for t in period["thresholds"] or ()}):
            if after * 100 < period["limit"] * threshold:
                break
            alerted |= await _alert(conn, scope, period, threshold, after)
    if alerted:
        await conn.execute(f"NOTIFY {ALERT_CHANNEL}")


async def _alert(
    conn: AsyncConnection[Any],
    scope: Mapping[str, Any],
    period: Mapping[str, Any],
    threshold: int,
    spent: int,
) -> bool:
    """The threshold's alert, once per budget and period; False when it exists already."""
    cursor = await conn.execute(
        "INSERT INTO billing_budgetalert (id, budget_id, period_start, threshold, spent_micros, "
        "limit_micros, created_at) VALUES (%s, %s, %s, %s, %s, %s, now()) "
        "ON CONFLICT (budget_id, period_start, threshold) DO NOTHING RETURNING id",
        (uuid.uuid4(), period["budget"], period["start"], threshold, spent, period["limit"]),
    )
    row = await cursor.fetchone()
    if row is None:
        return False
    alert_id = row[0]
    title = f"Budget '{period['name']}' reached {threshold}%"
    body = (
        f"{dollars(spent)} of {dollars(period['limit'])} spent this {period['period']} "
        f"({period['scope']} budget)."
    )
    await conn.execute(
        "INSERT INTO billing_notification (org_id, kind, title, body, data, alert_id, "
        "created_at) VALUES (%s, 'budget.threshold', %s, %s, %s::jsonb, %s, now())",
        (
            scope["org"],
            title,
            body,
            json.dumps(
                {
                    "budget": str(period["budget"]),
                    "threshold": threshold,
                    "spent_micros": spent,
                    "limit_micros": period["limit"],
                }
            ),
            alert_id,
        ),
    )
    await conn.execute(
        "INSERT INTO billing_alertdelivery (alert_id, channel, target, status, attempts, "
        "next_attempt_at, last_error) "
        "SELECT %(alert)s, 'email', u.email, 'pending', 0, now(), '' FROM tenants_membership m "
        "JOIN tenants_user u ON u.id = m.user_id "
        "WHERE m.org_id = %(org)s AND m.role = ANY(%(roles)s) AND u.email <> '' "
        "UNION ALL "
        "SELECT %(alert)s, 'webhook', e.id::text, 'pending', 0, now(), '' "
        "FROM billing_webhookendpoint e WHERE e.org_id = %(org)s AND e.enabled "
        "ON CONFLICT (alert_id, channel, target) DO NOTHING",
        {"alert": alert_id, "org": scope["org"], "roles": list(COST_ROLES)},
    )
    return True
