"""Fixtures for the Python binding tests: the generated module, fresh stores, the server URL
and small builders for spaces and items. Run through scripts/test-bindings-python."""

import os
import sys
import threading
import uuid

import pytest

BINDINGS_DIR = os.environ.get("QUARTIER_BINDINGS_DIR")
if BINDINGS_DIR:
    sys.path.insert(0, BINDINGS_DIR)

import quartier as q  # noqa: E402

# The longest any test waits for something that happens on another thread (listener calls,
# background work). A bound against hanging, not a timing assertion.
WAIT_S = 30.0


@pytest.fixture
def store(tmp_path):
    s = q.QuartierStore.open(str(tmp_path / "store.db"))
    yield s
    s.close()


@pytest.fixture(scope="session")
def server_url():
    url = os.environ.get("QUARTIER_SERVER_URL")
    if not url:
        pytest.skip("QUARTIER_SERVER_URL not set: run scripts/test-bindings-python")
    return url


def phone(tmp_path, server_url, name):
    """A phone: a fresh store named `name` in `tmp_path` and its sync client for `server_url`."""
    store = q.QuartierStore.open(str(tmp_path / f"{name}.db"))
    return store, q.QuartierSync(store, server_url)


def person():
    return str(uuid.uuid4())


def viewer(person_id, role=None):
    return q.Viewer(person=person_id, role=role or q.Role.COORDINATOR)


def space_meta(name="Nippes hilft"):
    return q.SpaceMeta(
        name={"de": name, "en": "Nippes helps"},
        time_zone="Europe/Berlin",
        default_language="de",
    )


def content(title, details, **fields):
    return q.ItemContent(
        title={"de": title},
        audience=fields.pop("audience", q.Audience.EVERYONE),
        status=fields.pop("status", q.Status.PUBLISHED),
        details=details,
        **fields,
    )


def post(title, **fields):
    return content(title, q.ItemDetails.POST(q.Post(post_type=q.PostType.NEWS)), **fields)


def place(title, lat, lon, **fields):
    return content(
        title,
        q.ItemDetails.PLACE(q.Place(category="cafe", accessibility={"step_free_entrance": "yes"})),
        location=q.Location(lat=lat, lon=lon, source=q.PositionSource.MANUAL),
        **fields,
    )


class Recorder(q.LiveQueryListener):
    """A LiveQueryListener that keeps every result and the thread each came on."""

    def __init__(self):
        self.cond = threading.Condition()
        self.results = []
        self.errors = []
        self.threads = set()

    def on_result(self, result):
        with self.cond:
            self.results.append(result)
            self.threads.add(threading.get_ident())
            self.cond.notify_all()

    def on_error(self, error):
        with self.cond:
            self.errors.append(error)
            self.cond.notify_all()

    def wait_for(self, predicate, timeout=WAIT_S):
        """Waits until `predicate(latest result)` holds; returns it (or fails the test)."""
        with self.cond:
            ok = self.cond.wait_for(lambda: self.results and predicate(self.results[-1]), timeout)
            assert ok, f"listener never saw the expected result; last: {self.results[-1:]!r}"
            return self.results[-1]
