"""The documented backup host (ws2.chronopost.fr, [D] §2.2.1): used only while the main host is
down, and searched with the main one by the recovery lookup so a label is never made twice.

The two hosts are one sandbox served on two ports (one store: the same service behind two
doors, as a backup host is), except where a test says it models hosts that do not share data.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from chronoforce.chronopost import CarrierCall, ChronopostClient, ChronopostEndpoint
from chronoforce.chronopost.config import BACKUP, MAIN, backup_for
from chronoforce.chronopost.transport import HostBreaker
from chronoforce.domain.errors import CarrierUnavailableError
from chronoforce.sandbox.chronopost import ChronopostSandbox
from chronoforce.sandbox.server import BackgroundServer

from .conftest import CREDENTIALS, make_request


@dataclass
class Hosts:
    sandbox: ChronopostSandbox
    main: BackgroundServer
    backup: BackgroundServer
    calls: list[CarrierCall]

    def client(self, failover_after: int = 2) -> ChronopostClient:
        endpoint = ChronopostEndpoint(
            self.main.url,
            connect_timeout=1.0,
            read_timeout=5.0,
            backup_url=self.backup.url,
            failover_after=failover_after,
            failover_s=60.0,
        )
        return ChronopostClient(endpoint, CREDENTIALS, on_call=self.calls.append)

    def hosts_called(self) -> list[str]:
        return [c.host for c in self.calls]


@pytest.fixture()
def hosts() -> Iterator[Hosts]:
    sandbox = ChronopostSandbox(db_path=":memory:")
    main = BackgroundServer(sandbox.app).start()
    backup = BackgroundServer(sandbox.app).start()
    try:
        yield Hosts(sandbox, main, backup, [])
    finally:
        main.stop()
        backup.stop()
        sandbox.close()


def test_calls_go_to_the_main_host_while_it_answers(hosts: Hosts) -> None:
    with hosts.client() as client:
        client.create_shipment(make_request())
        client.track(hosts.sandbox.parcels()[0].skybill)
    assert hosts.hosts_called() == [MAIN, MAIN]


def test_while_the_main_host_is_down_calls_go_to_the_backup(hosts: Hosts) -> None:
    hosts.main.stop()
    with hosts.client(failover_after=2) as client:
        for _ in range(2):  # no answer: the main host is down
            with pytest.raises(CarrierUnavailableError):
                client.create_shipment(make_request())
        made = client.create_shipment(make_request())  # the breaker on the main host is open
        assert client.track(made.skybill_numbers[0])
    assert hosts.hosts_called() == [MAIN, MAIN, BACKUP, BACKUP]
    assert hosts.sandbox.live_labels() == 1  # the failed calls never reached a server


def test_a_label_call_that_failed_is_never_sent_to_the_backup_too(hosts: Hosts) -> None:
    hosts.main.stop()
    with hosts.client(failover_after=5) as client, pytest.raises(CarrierUnavailableError):
        client.create_shipment(make_request())
    assert hosts.hosts_called() == [MAIN]


def test_the_recovery_lookup_asks_both_hosts(hosts: Hosts) -> None:
    with hosts.client() as client:
        created = client.create_shipment(make_request(order_number="SO-BOTH-1"))
        hosts.calls.clear()
        found = client.find_by_reference("SO-BOTH-1")
    assert [p.skybill_number for p in found] == list(created.skybill_numbers)  # one, not two
    assert [(c.operation, c.host) for c in hosts.calls] == [
        ("trackWithSenderRef", MAIN),
        ("trackWithSenderRef", BACKUP),
    ]


def test_the_recovery_lookup_fails_when_a_host_cannot_answer(hosts: Hosts) -> None:
    # "Nothing was made" is never concluded from one host: the lookup is retried instead.
    hosts.backup.stop()
    with hosts.client() as client, pytest.raises(CarrierUnavailableError):
        client.find_by_reference("SO-BOTH-2")


def test_a_label_made_through_the_backup_is_found_even_if_the_hosts_do_not_share_data() -> None:
    # The documents do not say whether ws2 shares ws's data (or lags behind it): two sandboxes
    # with their own stores model the worst case, and the lookup must still find the label.
    main_sb, backup_sb = ChronopostSandbox(db_path=":memory:"), ChronopostSandbox(seed=1)
    main, backup = BackgroundServer(main_sb.app).start(), BackgroundServer(backup_sb.app).start()
    try:
        endpoint = ChronopostEndpoint(main.url, backup_url=backup.url, failover_after=1)
        with ChronopostClient(endpoint, CREDENTIALS) as client:
            main.stop()
            with pytest.raises(CarrierUnavailableError):
                client.create_shipment(make_request(order_number="SO-CRASH-1"))
            made = client.create_shipment(make_request(order_number="SO-CRASH-1"))  # backup
            main = BackgroundServer(main_sb.app, port=int(main.url.rsplit(":", 1)[1])).start()
            client._http.breaker.record(True)  # the main host is back (a probe answered)
            found = client.find_by_reference("SO-CRASH-1")
        assert [p.skybill_number for p in found] == list(made.skybill_numbers)
        assert main_sb.live_labels() == 0 and backup_sb.live_labels() == 1
    finally:
        main.stop()
        backup.stop()


def test_the_main_host_is_tried_again_after_the_failover_time() -> None:
    now = [0.0]
    breaker = HostBreaker(failures_to_open=2, open_s=30.0, clock=lambda: now[0])
    breaker.record(False)
    assert not breaker.is_open()
    breaker.record(False)
    assert breaker.is_open()
    now[0] = 31.0
    assert not breaker.is_open()  # the next call probes the main host
    breaker.record(False)  # still down: open again at once, for twice as long
    now[0] = 31.0 + 59.0
    assert breaker.is_open()
    now[0] = 31.0 + 61.0
    breaker.record(True)
    assert not breaker.is_open()


def test_production_fails_over_to_the_documented_backup_and_a_sandbox_never_does() -> None:
    assert backup_for("https://ws.chronopost.fr/", None) == "https://ws2.chronopost.fr"
    assert backup_for("https://ws.chronopost.fr", "") == ""
    assert backup_for("http://127.0.0.1:8080", None) == ""
    assert backup_for("http://127.0.0.1:8080", "http://127.0.0.1:8081") == "http://127.0.0.1:8081"


def test_the_backup_host_comes_from_the_chronopost_section_of_the_configuration() -> None:
    from chronoforce.config import ChronopostConfig, Secrets, Settings

    def endpoint(**chronopost: str) -> ChronopostEndpoint:
        settings = Settings(
            chronopost=ChronopostConfig(**chronopost), secrets=Secrets(chronopost_password="x")
        )
        with ChronopostClient.from_settings(settings) as client:
            return client.endpoint

    assert endpoint().backup_url == "https://ws2.chronopost.fr"  # production by default
    assert endpoint(base_url="http://127.0.0.1:9").backup_url == ""
    assert endpoint(base_url="http://127.0.0.1:9", backup_url="http://127.0.0.1:10").hosts == (
        MAIN,
        BACKUP,
    )
