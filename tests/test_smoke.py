from ledgersync import protocol


def test_package_exports_protocol() -> None:
    assert protocol.LEDGER_SYNC_APPLICATION_ID == 16
