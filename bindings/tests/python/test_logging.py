"""Log events reach the foreign logger, filtered by level before they cross."""

import threading

from conftest import q


class Collect(q.Logger):
    def __init__(self):
        self.events = []
        self.lock = threading.Lock()

    def log(self, event):
        with self.lock:
            self.events.append(event)


def test_logger_receives_events_at_or_above_its_level():
    logs = Collect()
    q.set_logger(logs, q.LogLevel.WARN)
    q.log_test_event(q.LogLevel.INFO, "not wanted")
    q.log_test_event(q.LogLevel.WARN, "wanted warning")
    q.log_test_event(q.LogLevel.ERROR, "wanted error")
    messages = [(e.level, e.message) for e in logs.events if e.target == "quartier_ffi"]
    assert messages == [(q.LogLevel.WARN, "wanted warning"), (q.LogLevel.ERROR, "wanted error")]

    q.set_logger(logs, q.LogLevel.DEBUG)
    q.log_test_event(q.LogLevel.DEBUG, "now wanted")
    assert logs.events[-1].message == "now wanted"

    q.clear_logger()
    before = len(logs.events)
    q.log_test_event(q.LogLevel.ERROR, "after clearing")
    assert len(logs.events) == before


def test_core_events_are_forwarded(store):
    logs = Collect()
    q.set_logger(logs, q.LogLevel.ERROR)
    try:
        # A caught panic is logged at error level by the facade.
        try:
            store.diagnostic_panic("logged")
        except q.QuartierError.Internal:
            pass
        assert any("logged" in e.message and e.level == q.LogLevel.ERROR for e in logs.events)
    finally:
        q.clear_logger()


def test_throwing_logger_is_ignored():
    class Throwing(q.Logger):
        def log(self, event):
            raise RuntimeError("logger bug")

    q.set_logger(Throwing(), q.LogLevel.TRACE)
    try:
        q.log_test_event(q.LogLevel.ERROR, "into a broken logger")
    finally:
        q.clear_logger()
    assert q.library_version()
