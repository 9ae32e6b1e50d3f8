"""The fake Stripe (billing/fake_stripe.py) driven by the official `stripe` SDK: the SDK
must work unmodified against it (form encoding in, Stripe-shaped JSON and errors out), the
hosted Checkout and portal pages must complete flows, and its webhooks must be signed so
that `stripe.Webhook.construct_event` accepts them. No Django involved."""

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import stripe

from billing.fake_stripe import BAD_KEY, FakeStripeError, FakeStripeServer, parse_form

SUCCESS_URL = "http://app.test/billing/done?session={CHECKOUT_SESSION_ID}"


# --- fixtures ---------------------------------------------------------------------------


class Receiver:
    """A tiny webhook endpoint: records each POST; answers the scripted statuses first."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver.lock:
                    receiver.received.append(
                        ({k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/webhook"
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(body) for _, body in self.received]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    endpoint = Receiver()
    yield endpoint
    endpoint.close()


@pytest.fixture
def server(receiver: Receiver) -> Iterator[FakeStripeServer]:
    with FakeStripeServer(
        webhook_url=receiver.url, webhook_retry_delays=(0.05, 0.1), webhook_timeout_s=2
    ) as fake:
        yield fake


def make_client(server: FakeStripeServer, key: str = "sk_test_fake") -> stripe.StripeClient:
    bases = dict.fromkeys(("api", "files", "connect", "meter_events"), server.url)
    return stripe.StripeClient(key, base_addresses=bases, max_network_retries=0)  # type: ignore[arg-type]


@pytest.fixture
def client(server: FakeStripeServer) -> stripe.StripeClient:
    return make_client(server)


class Catalog:
    """A product with a licensed "starter" and "pro" price and a metered "runs" price."""

    def __init__(self, client: stripe.StripeClient) -> None:
        self.product = client.v1.products.create({"name": "FireFlow"})
        self.meter = client.v1.billing.meters.create(
            {
                "display_name": "Flow runs",
                "event_name": "flow_runs",
                "default_aggregation": {"formula": "sum"},
                "customer_mapping": {"event_payload_key": "stripe_customer_id", "type": "by_id"},
                "value_settings": {"event_payload_key": "value"},
            }
        )
        self.starter = self.price(client, 1_000, "starter_monthly", "Starter")
        self.pro = self.price(client, 5_000, "pro_monthly", "Pro")
        self.runs = client.v1.prices.create(
            {
                "product": self.product.id,
                "currency": "usd",
                "unit_amount": 2,
                "recurring": {"interval": "month", "usage_type": "metered", "meter": self.meter.id},
                "lookup_key": "runs_metered",
            }
        )

    def price(self, client: stripe.StripeClient, amount: int, key: str, name: str) -> Any:
        return client.v1.prices.create(
            {
                "product": self.product.id,
                "currency": "usd",
                "unit_amount": amount,
                "recurring": {"interval": "month"},
                "lookup_key": key,
                "nickname": name,
                "metadata": {"plan": key},
            }
        )


@pytest.fixture
def catalog(client: stripe.StripeClient) -> Catalog:
    return Catalog(client)


def checkout(client: stripe.StripeClient, catalog: Catalog, customer: str) -> Any:
    return client.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "customer": customer,
            "line_items": [
                {"price": catalog.starter.id, "quantity": 2},
                {"price": catalog.runs.id},
            ],
            "success_url": SUCCESS_URL,
            "cancel_url": "http://app.test/billing",
            "client_reference_id": "org_1",
            "metadata": {"org": "org_1"},
            "subscription_data": {"metadata": {"org": "org_1"}},
        }
    )


def browser(method: str, url: str, form: dict[str, str] | None = None) -> tuple[int, str, str]:
    """(status, Location, body) without following redirects, as a browser's first hop."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    data = urllib.parse.urlencode(form or {}).encode() if method == "POST" else None
    request = urllib.request.Request(url, data=data, method=method)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect())
    try:
        with opener.open(request, timeout=5) as response:
            return response.status, response.headers.get("location", ""), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("location", ""), exc.read().decode()


def raw_api(
    server: FakeStripeServer, method: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(server.url + path, method=method, headers=headers or {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


# --- the wire format --------------------------------------------------------------------


def test_form_parser_reads_stripe_bracket_notation() -> None:
    query = (
        "email=a%40b.c&metadata[org]=x&metadata[0]=digit&line_items[0][price]=p1"
        "&line_items[0][quantity]=2&line_items[1][price]=p2&expand[]=a&expand[]=b"
        "&lookup_keys[0]=k1&lookup_keys[1]=k2&recurring[interval]=month&empty="
    )
    assert parse_form(query) == {
        "email": "a@b.c",
        "metadata": {"org": "x", "0": "digit"},  # metadata keys stay keys
        "line_items": [{"price": "p1", "quantity": "2"}, {"price": "p2"}],
        "expand": ["a", "b"],
        "lookup_keys": ["k1", "k2"],
        "recurring": {"interval": "month"},
        "empty": "",
    }


def test_sdk_sends_form_encoding_with_indexed_lists(
    server: FakeStripeServer, client: stripe.StripeClient
) -> None:
    client.v1.prices.list({"lookup_keys": ["a", "b"], "active": True, "expand": ["data.product"]})
    request = server.requests[-1]
    assert request.method == "GET"
    # The SDK indexes every list (`[0]`, never `[]`) and writes booleans as words; in a query
    # string `requests` escapes the brackets (a POST body keeps them literal).
    assert "lookup_keys%5B0%5D=a&lookup_keys%5B1%5D=b" in request.path
    assert "active=true" in request.path
    assert request.params["expand"] == ["data.product"]
    assert request.headers["authorization"] == "Bearer sk_test_fake"


def test_customer_create_with_the_same_idempotency_key_makes_one_customer(
    server: FakeStripeServer, client: stripe.StripeClient
) -> None:
    params = {"email": "ada@example.com", "name": "Ada", "metadata": {"org": "org_1"}}
    first = client.v1.customers.create(params, {"idempotency_key": "signup-org_1"})
    second = client.v1.customers.create(params, {"idempotency_key": "signup-org_1"})
    assert first.id == second.id
    assert first.id.startswith("cus_")
    assert first.object == "customer"
    assert first.livemode is False
    assert isinstance(first.created, int)
    assert first.metadata["org"] == "org_1"
    assert list(server.customers) == [first.id]
    assert server.idempotent_replays == 1
    assert [event["type"] for event in server.events] == ["customer.created"]
    assert second.last_response.headers["idempotent-replayed"] == "true"
    # The same key with other parameters is Stripe's idempotency error.
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create(
            {"email": "other@example.com"}, {"idempotency_key": "signup-org_1"}
        )
    # Every POST carries a key anyway: the SDK makes one up.
    assert all(r.headers.get("idempotency-key") for r in server.requests if r.method == "POST")


def test_customer_update_and_list_by_email(
    client: stripe.StripeClient, server: FakeStripeServer
) -> None:
    ada = client.v1.customers.create({"email": "ada@example.com", "metadata": {"a": "1", "b": "2"}})
    client.v1.customers.create({"email": "bob@example.com"})
    updated = client.v1.customers.update(ada.id, {"name": "Ada L", "metadata": {"a": "", "c": "3"}})
    assert updated.name == "Ada L"
    assert updated.metadata.to_dict() == {"b": "2", "c": "3"}  # "" unsets a key
    assert client.v1.customers.retrieve(ada.id).name == "Ada L"
    found = client.v1.customers.list({"email": "ada@example.com"})
    assert [c.id for c in found.data] == [ada.id]
    assert found.object == "list"
    assert found.url == "/v1/customers"
    assert found.has_more is False
    everyone = client.v1.customers.list({"limit": 1})
    assert len(everyone.data) == 1
    assert everyone.has_more is True
    assert len(list(everyone.auto_paging_iter())) == 2  # cursors work
    (event,) = server.events_of("customer.updated")
    assert event["data"]["previous_attributes"]["name"] is None


def test_bad_or_missing_key_is_401(server: FakeStripeServer) -> None:
    with pytest.raises(stripe.AuthenticationError) as raised:
        make_client(server, BAD_KEY).v1.customers.list()
    assert raised.value.http_status == 401
    with pytest.raises(stripe.AuthenticationError):
        make_client(server, "sk_live_real").v1.customers.list()
    status, body = raw_api(server, "GET", "/v1/customers")
    assert status == 401
    assert body["error"]["type"] == "invalid_request_error"
    assert "API key" in body["error"]["message"]


def test_missing_objects_and_unknown_routes_are_404_in_stripes_shape(
    server: FakeStripeServer, client: stripe.StripeClient
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.customers.retrieve("cus_missing")
    error = raised.value
    assert error.http_status == 404
    assert error.code == "resource_missing"
    assert error.param == "id"
    assert error.json_body is not None
    assert error.json_body["error"]["message"] == "No such customer: 'cus_missing'"
    status, body = raw_api(server, "GET", "/v1/nothing", {"Authorization": "Bearer sk_test_fake"})
    assert status == 404
    assert body["error"]["message"].startswith("Unrecognized request URL (GET: /v1/nothing)")
    with pytest.raises(stripe.InvalidRequestError) as missing:  # a 400 for a missing param
        client.v1.billing.meters.create({"display_name": "x", "event_name": "y"})  # type: ignore[typeddict-item]
    assert missing.value.http_status == 400
    assert missing.value.param == "default_aggregation[formula]"


def test_module_level_configuration_works(
    server: FakeStripeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stripe, "api_base", server.url)
    monkeypatch.setattr(stripe, "api_key", "sk_test_module")
    monkeypatch.setattr(stripe, "max_network_retries", 0)
    customer = stripe.Customer.create(email="mod@example.com")
    assert stripe.Customer.retrieve(customer.id).email == "mod@example.com"
    assert server.requests[-1].headers["authorization"] == "Bearer sk_test_module"


# --- catalog ----------------------------------------------------------------------------


def test_prices_filter_by_lookup_keys_active_and_product(
    client: stripe.StripeClient, catalog: Catalog
) -> None:
    found = client.v1.prices.list({"lookup_keys": ["pro_monthly", "runs_metered"]})
    assert {p.id for p in found.data} == {catalog.pro.id, catalog.runs.id}
    pro = client.v1.prices.list({"lookup_keys": ["pro_monthly"], "expand": ["data.product"]}).data[
        0
    ]
    assert pro.product.name == "FireFlow"  # expanded
    assert pro.recurring.usage_type == "licensed"
    assert pro.unit_amount == 5_000
    assert pro.id.startswith("price_")
    assert client.v1.prices.retrieve(catalog.runs.id).recurring.meter == catalog.meter.id
    assert len(client.v1.prices.list({"product": catalog.product.id}).data) == 3
    assert client.v1.prices.list({"active": False}).data == []
    assert client.v1.products.retrieve(catalog.product.id).id.startswith("prod_")
    (meter,) = client.v1.billing.meters.list().data
    assert (meter.id[:4], meter.object, meter.event_name) == ("mtr_", "billing.meter", "flow_runs")
    with pytest.raises(stripe.InvalidRequestError, match="lookup key"):
        catalog.price(client, 1, "pro_monthly", "Again")
    with pytest.raises(stripe.InvalidRequestError, match="meter"):
        client.v1.prices.create(
            {
                "product": catalog.product.id,
                "currency": "usd",
                "unit_amount": 1,
                "recurring": {"interval": "month", "usage_type": "metered"},
            }
        )


# --- checkout and webhooks --------------------------------------------------------------


def test_checkout_pay_button_makes_an_active_subscription_and_signed_webhooks(
    server: FakeStripeServer, client: stripe.StripeClient, catalog: Catalog, receiver: Receiver
) -> None:
    customer = client.v1.customers.create({"email": "ada@example.com"})
    session = checkout(client, catalog, customer.id)
    assert session.id.startswith("cs_test_")
    assert session.status == "open"
    assert session.url == f"{server.url}/checkout/{session.id}"
    assert session.amount_total == 2_000

    status, _, page = browser("GET", session.url)
    assert status == 200
    assert "Pay" in page
    assert f'action="/checkout/{session.id}/pay"' in page
    status, location, _ = browser("POST", f"{server.url}/checkout/{session.id}/pay")
    assert status == 303
    assert location == SUCCESS_URL.replace("{CHECKOUT_SESSION_ID}", session.id)

    done = client.v1.checkout.sessions.retrieve(session.id, {"expand": ["subscription"]})
    assert done.status == "complete"
    assert done.payment_status == "paid"
    subscription = done.subscription
    assert subscription.id.startswith("sub_")
    assert subscription.status == "active"
    assert subscription.customer == customer.id
    assert subscription.metadata.to_dict() == {"org": "org_1"}
    items = subscription["items"].data
    assert [item.price.id for item in items] == [catalog.starter.id, catalog.runs.id]
    assert items[0].quantity == 2
    assert items[0].id.startswith("si_")
    assert subscription.current_period_end > subscription.current_period_start
    assert items[0].current_period_end == subscription.current_period_end

    types = [event["type"] for event in server.events]
    for wanted in ("checkout.session.completed", "customer.subscription.created", "invoice.paid"):
        assert wanted in types
    assert server.wait_for_webhooks()
    assert len(receiver.received) == len(types)
    for headers, body in receiver.received:
        event = stripe.Webhook.construct_event(
            body, headers["stripe-signature"], server.webhook_secret
        )
        assert event.id.startswith("evt_")
        assert event.livemode is False
    headers, body = next((h, b) for h, b in receiver.received if b"checkout.session.completed" in b)
    event = client.construct_event(body, headers["stripe-signature"], server.webhook_secret)
    assert event.type == "checkout.session.completed"
    assert event.data.object.subscription == subscription.id
    assert event.data.object.client_reference_id == "org_1"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(
            body.replace(b"org_1", b"org_2"), headers["stripe-signature"], server.webhook_secret
        )
    stale = server.sign(body, timestamp=int(time.time()) - 3600)
    with pytest.raises(stripe.SignatureVerificationError, match="tolerance"):
        stripe.Webhook.construct_event(body, stale, server.webhook_secret)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, headers["stripe-signature"], "whsec_other")
    assert all(delivery.ok and delivery.attempt == 1 for delivery in server.deliveries)

    # Paying twice changes nothing; the completed page says so.
    status, location, _ = browser("POST", f"{server.url}/checkout/{session.id}/pay")
    assert status == 303
    assert len(server.subscriptions) == 1
    assert "complete" in browser("GET", f"{server.url}/checkout/{session.id}")[2]


def test_complete_checkout_helper_and_the_first_invoice(
    server: FakeStripeServer, client: stripe.StripeClient, catalog: Catalog
) -> None:
    session = client.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "customer_email": "new@example.com",
            "line_items": [{"price": catalog.pro.id, "quantity": 1}],
            "success_url": SUCCESS_URL,
        }
    )
    done = server.complete_checkout(session.id)
    assert done["status"] == "complete"
    customer = server.customers[done["customer"]]  # Checkout made the customer
    assert customer["email"] == "new@example.com"
    invoices = client.v1.invoices.list({"customer": customer["id"]}).data
    assert len(invoices) == 1
    invoice = client.v1.invoices.retrieve(invoices[0].id)
    assert invoice.id.startswith("in_")
    assert (invoice.status, invoice.amount_due, invoice.amount_paid) == ("paid", 5_000, 5_000)
    assert invoice.currency == "usd"
    assert invoice.subscription == done["subscription"]
    assert invoice.parent.subscription_details.subscription == done["subscription"]
    assert invoice.number.endswith("-0001")
    assert invoice.hosted_invoice_url.startswith(server.url)
    assert isinstance(invoice.period_start, int)
    assert isinstance(invoice.period_end, int)
    assert browser("GET", invoice.hosted_invoice_url)[0] == 200
    with pytest.raises(FakeStripeError, match="no longer open"):
        server.complete_checkout(session.id)


def test_invoices_list_by_customer(
    server: FakeStripeServer, client: stripe.StripeClient, catalog: Catalog
) -> None:
    ada = client.v1.customers.create({"email": "ada@example.com"})
    bob = client.v1.customers.create({"email": "bob@example.com"})
    for customer in (ada, bob, ada):
        server.complete_checkout(checkout(client, catalog, customer.id).id)
    ada_invoices = client.v1.invoices.list({"customer": ada.id}).data
    assert len(ada_invoices) == 2
    assert {invoice.customer for invoice in ada_invoices} == {ada.id}
    assert [invoice.number[-4:] for invoice in ada_invoices] == ["0002", "0001"]  # newest first
    assert len(client.v1.invoices.list({"customer": bob.id}).data) == 1
    assert len(client.v1.invoices.list({"limit": 2}).data) == 2
    assert len(client.v1.subscriptions.list({"customer": ada.id}).data) == 2


def test_checkout_rejects_what_stripe_rejects(
    client: stripe.StripeClient, catalog: Catalog
) -> None:
    base: dict[str, Any] = {"mode": "subscription", "success_url": SUCCESS_URL}
    with pytest.raises(stripe.InvalidRequestError, match="quantity"):  # licensed needs one
        client.v1.checkout.sessions.create({**base, "line_items": [{"price": catalog.pro.id}]})
    with pytest.raises(stripe.InvalidRequestError, match="metered"):  # metered takes none
        client.v1.checkout.sessions.create(
            {**base, "line_items": [{"price": catalog.runs.id, "quantity": 1}]}
        )
    with pytest.raises(stripe.InvalidRequestError, match="No such price") as raised:
        client.v1.checkout.sessions.create(
            {**base, "line_items": [{"price": "price_nope", "quantity": 1}]}
        )
    assert raised.value.http_status == 400
    assert raised.value.param == "line_items[0][price]"


# --- the portal and subscription changes ------------------------------------------------


def test_portal_switch_and_cancel(
    server: FakeStripeServer, client: stripe.StripeClient, catalog: Catalog, receiver: Receiver
) -> None:
    customer = client.v1.customers.create({"email": "ada@example.com"})
    done = server.complete_checkout(checkout(client, catalog, customer.id).id)
    subscription_id = done["subscription"]
    portal = client.v1.billing_portal.sessions.create(
        {"customer": customer.id, "return_url": "http://app.test/settings"}
    )
    assert portal.id.startswith("bps_")
    assert portal.url == f"{server.url}/portal/{portal.id}"
    status, _, page = browser("GET", portal.url)
    assert status == 200
    assert "Switch to Pro" in page
    assert "Cancel subscription" in page

    status, location, _ = browser(
        "POST",
        f"{portal.url}/switch",
        {"subscription": subscription_id, "price": catalog.pro.id},
    )
    assert (status, location) == (303, "http://app.test/settings")
    switched = client.v1.subscriptions.retrieve(subscription_id)
    assert [item.price.id for item in switched["items"].data] == [catalog.pro.id, catalog.runs.id]
    (updated,) = server.events_of("customer.subscription.updated")
    before = updated["data"]["previous_attributes"]["items"]["data"]
    assert before[0]["price"]["id"] == catalog.starter.id

    status, location, _ = browser("POST", f"{portal.url}/cancel", {"subscription": subscription_id})
    assert (status, location) == (303, "http://app.test/settings")
    assert client.v1.subscriptions.retrieve(subscription_id).status == "canceled"
    (deleted,) = server.events_of("customer.subscription.deleted")
    assert deleted["data"]["object"]["status"] == "canceled"
    assert server.wait_for_webhooks()
    assert "customer.subscription.deleted" in [e["type"] for e in receiver.events()]

    other = client.v1.customers.create({"email": "eve@example.com"})
    eve_portal = client.v1.billing_portal.sessions.create({"customer": other.id})
    status, _, _ = browser("POST", f"{eve_portal.url}/cancel", {"subscription": subscription_id})
    assert status == 403  # not hers


def test_python_helpers_and_the_subscriptions_api(
    server: FakeStripeServer, client: stripe.StripeClient, catalog: Catalog
) -> None:
    customer = client.v1.customers.create({"email": "ada@example.com"})
    first = server.complete_checkout(checkout(client, catalog, customer.id).id)["subscription"]
    second = server.complete_checkout(checkout(client, catalog, customer.id).id)["subscription"]
    assert server.switch_price(first, catalog.pro.id)["items"]["data"][0]["price"]["id"] == (
        catalog.pro.id
    )
    later = server.cancel_subscription(first, at_period_end=True)
    assert later["cancel_at_period_end"] is True
    assert later["status"] == "active"

    sub = client.v1.subscriptions.retrieve(second)
    item = sub["items"].data[0]
    changed = client.v1.subscriptions.update(
        second,
        {"items": [{"id": item.id, "price": catalog.pro.id}], "metadata": {"seat": "5"}},
    )
    assert changed["items"].data[0].price.id == catalog.pro.id
    assert changed.metadata.to_dict() == {"org": "org_1", "seat": "5"}
    with pytest.raises(stripe.InvalidRequestError, match="same price"):
        client.v1.subscriptions.update(second, {"items": [{"price": catalog.pro.id}]})
    canceled = client.v1.subscriptions.cancel(second)
    assert canceled.status == "canceled"
    assert [s.id for s in client.v1.subscriptions.list({"customer": customer.id}).data] == [first]
    every = client.v1.subscriptions.list({"customer": customer.id, "status": "all"}).data
    assert {s.id for s in every} == {first, second}
    assert client.v1.subscriptions.list({"status": "canceled"}).data[0].id == second
    with pytest.raises(stripe.InvalidRequestError, match="canceled"):
        client.v1.subscriptions.update(second, {"cancel_at_period_end": True})
    types = [event["type"] for event in server.events]
    assert types.count("customer.subscription.updated") == 3
    assert types.count("customer.subscription.deleted") == 1


# --- meter events -----------------------------------------------------------------------


def test_meter_event_duplicate_identifier_is_rejected_and_recorded(
    server: FakeStripeServer, client: stripe.StripeClient, catalog: Catalog
) -> None:
    customer = client.v1.customers.create({"email": "ada@example.com"})
    payload = {"stripe_customer_id": customer.id, "value": "3"}
    sent = client.v1.billing.meter_events.create(
        {"event_name": "flow_runs", "payload": payload, "identifier": "run-1"}
    )
    assert (sent.object, sent.identifier, sent.livemode) == ("billing.meter_event", "run-1", False)
    client.v1.billing.meter_events.create(
        {"event_name": "flow_runs", "payload": {**payload, "value": "4"}, "identifier": "run-2"}
    )
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.billing.meter_events.create(
            {"event_name": "flow_runs", "payload": payload, "identifier": "run-1"}
        )
    assert raised.value.http_status == 400
    assert raised.value.code == "duplicate_meter_event"
    with pytest.raises(stripe.InvalidRequestError, match="too far in the past"):
        client.v1.billing.meter_events.create(
            {
                "event_name": "flow_runs",
                "payload": payload,
                "identifier": "run-old",
                "timestamp": int(time.time()) - 40 * 86_400,
            }
        )
    # A retry with the same idempotency key is a replay, not a duplicate.
    options: Any = {"idempotency_key": "usage-run-3"}
    retry = {"event_name": "flow_runs", "payload": payload, "identifier": "run-3"}
    client.v1.billing.meter_events.create(retry, options)
    client.v1.billing.meter_events.create(retry, options)

    outcomes = [(a.identifier, a.outcome) for a in server.meter_events]
    assert outcomes == [
        ("run-1", "accepted"),
        ("run-2", "accepted"),
        ("run-1", "duplicate"),
        ("run-old", "invalid"),
        ("run-3", "accepted"),
        ("run-3", "replayed"),
    ]
    assert server.duplicate_meter_identifiers() == ["run-1"]
    assert server.meter_totals() == {customer.id: 10}
    assert server.meter_totals("other_event") == {}
    assert all(a.api == "v1" for a in server.meter_events)


def test_v2_meter_events_take_json_and_share_identifiers_with_v1(
    server: FakeStripeServer, client: stripe.StripeClient, catalog: Catalog
) -> None:
    customer = client.v1.customers.create({"email": "ada@example.com"})
    sent = client.v2.billing.meter_events.create(
        {
            "event_name": "flow_runs",
            "payload": {"stripe_customer_id": customer.id, "value": "5"},
            "identifier": "run-9",
        }
    )
    assert sent.object == "v2.billing.meter_event"
    assert sent.identifier == "run-9"
    assert sent.timestamp.endswith("Z")  # v2 timestamps are ISO 8601 strings
    request = server.requests[-1]
    assert request.path == "/v2/billing/meter_events"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.body)["payload"]["value"] == "5"
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.billing.meter_events.create(
            {
                "event_name": "flow_runs",
                "payload": {"stripe_customer_id": customer.id, "value": "5"},
                "identifier": "run-9",
            }
        )
    assert raised.value.code == "duplicate_meter_event"
    assert [(a.api, a.outcome) for a in server.meter_events] == [
        ("v2", "accepted"),
        ("v1", "duplicate"),
    ]
    assert server.meter_totals("flow_runs") == {customer.id: 5}


# --- webhook delivery controls ----------------------------------------------------------


def test_held_webhooks_are_released_in_reverse(
    server: FakeStripeServer, client: stripe.StripeClient, catalog: Catalog, receiver: Receiver
) -> None:
    server.hold_webhooks()
    customer = client.v1.customers.create({"email": "ada@example.com"})
    server.complete_checkout(checkout(client, catalog, customer.id).id)
    time.sleep(0.05)
    assert receiver.received == []  # held
    created = [event["id"] for event in server.events]
    assert server.release_webhooks(order="reverse") == created[::-1]
    assert server.wait_for_webhooks()
    assert [event["id"] for event in receiver.events()] == created[::-1]


def test_failed_deliveries_are_retried_and_events_can_be_redelivered(
    server: FakeStripeServer, client: stripe.StripeClient, receiver: Receiver
) -> None:
    receiver.statuses = [500, 503]
    customer = client.v1.customers.create({"email": "ada@example.com"})
    assert server.wait_for_webhooks()
    (event,) = server.events
    attempts = [(d.attempt, d.status) for d in server.deliveries]
    assert attempts == [(1, 500), (2, 503), (3, 200)]
    assert [e["data"]["object"]["id"] for e in receiver.events()] == [customer.id] * 3

    server.redeliver(event["id"])
    assert server.wait_for_webhooks()
    headers, body = receiver.received[-1]
    assert json.loads(body)["id"] == event["id"]
    stripe.Webhook.construct_event(body, headers["stripe-signature"], server.webhook_secret)
    assert body == server.event_payload(event["id"])

    # Without an endpoint, events are kept but not sent; the url can change any time.
    server.webhook_url = None
    client.v1.customers.create({"email": "bob@example.com"})
    assert server.wait_for_webhooks()
    assert len(receiver.received) == 4
    events = client.v1.events.list({"type": "customer.created"})
    assert len(events.data) == 2
    assert client.v1.events.retrieve(event["id"]).type == "customer.created"

    server.reset()
    assert server.events == []
    assert server.customers == {}
    assert server.deliveries == []
